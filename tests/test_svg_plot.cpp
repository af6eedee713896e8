// The one plotting path (histoflow/svg_plot.hpp): ticks, escaping, base64, and the figures' required parts.
#include <catch2/catch.hpp>

#include "histoflow/svg_plot.hpp"

using namespace histoflow;

TEST_CASE("nice ticks are 1, 2, 2.5 or 5 times a power of ten and cover the range", "[svg]") {
  const auto unit = svg::nice_ticks(0, 1);
  REQUIRE(unit.size() == 6);
  for (std::size_t i = 0; i < unit.size(); ++i) CHECK(unit[i] == Approx(0.2 * static_cast<double>(i)).margin(1e-12));
  const auto hours = svg::nice_ticks(0, 3600);
  CHECK(hours.front() == 0);
  CHECK(hours[1] == 1000);
  const auto small = svg::nice_ticks(0.013, 0.021);
  CHECK(small.front() >= 0.013);
  CHECK(small.back() <= 0.021 + 1e-12);
  CHECK(small[1] - small[0] == Approx(0.002));
  CHECK(svg::nice_ticks(5, 5) == std::vector<double>{5});  // an empty range: one tick, no endless loop
}

TEST_CASE("text is escaped for SVG and HTML, numbers are fixed without a negative zero", "[svg]") {
  CHECK(svg::escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  CHECK(svg::fixed(0.12345, 3) == "0.123");
  CHECK(svg::fixed(-0.0001, 3) == "0.000");
  CHECK(svg::fixed(std::nan(""), 3) == "nan");
}

TEST_CASE("base64 follows RFC 4648's test vectors", "[svg]") {
  CHECK(svg::base64("") == "");
  CHECK(svg::base64("f") == "Zg==");
  CHECK(svg::base64("fo") == "Zm8=");
  CHECK(svg::base64("foo") == "Zm9v");
  CHECK(svg::base64("foob") == "Zm9vYg==");
  CHECK(svg::base64("fooba") == "Zm9vYmE=");
  CHECK(svg::base64("foobar") == "Zm9vYmFy");
  CHECK(svg::base64(std::string("\xff\x00\x80", 3)) == "/wCA");
}

TEST_CASE("a line plot has its title, axis labels, ticks and a legend entry per named series", "[svg]") {
  svg::LinePlot plot;
  plot.title = "Accuracy <k-NN>";
  plot.x = {"iteration"};
  plot.y = {"balanced accuracy", 0, 1};
  plot.series.push_back({"teacher k-NN", {0, 500, 1000}, {0.5, 0.7, 0.8}, 0, true});
  plot.series.push_back({"", {0, 1000}, {0.5, 0.5}, 1});
  const std::string figure = svg::line_plot(plot);
  CHECK(figure.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK_THAT(figure, Catch::Contains(">Accuracy &lt;k-NN&gt;</text>"));
  CHECK_THAT(figure, Catch::Contains(">iteration</text>"));
  CHECK_THAT(figure, Catch::Contains("rotate(-90)\" text-anchor=\"middle\">balanced accuracy</text>"));
  CHECK_THAT(figure, Catch::Contains(">1000</text>"));  // the x axis reaches the data's end on a round tick
  CHECK_THAT(figure, Catch::Contains(">0.8</text>"));
  CHECK_THAT(figure, Catch::Contains(">teacher k-NN</text>"));
  CHECK_THAT(figure, Catch::Contains("<circle"));  // markers
  plot.series.push_back({"bad", {0, 1}, {0}, 2});
  CHECK_THROWS_WITH(svg::line_plot(plot), Catch::Contains("'bad' has unequal x and y lengths"));
}

TEST_CASE("bar charts, timelines and confusion matrices label what they show", "[svg]") {
  const std::string bars = svg::bar_chart({"Utilisation", "utilisation, %", {{"encode", 42, "42% · 6.9 s"}, {"read", 3, ""}}, 100});
  CHECK_THAT(bars, Catch::Contains(">encode</text>"));
  CHECK_THAT(bars, Catch::Contains(">42% · 6.9 s</text>"));
  CHECK_THAT(bars, Catch::Contains(">3.00</text>"));
  CHECK_THAT(bars, Catch::Contains(">utilisation, %</text>"));
  const std::string timeline = svg::timeline({"Busy", "seconds", 10, {{"encode", {{0, 2}, {5, 10}}}}});
  CHECK_THAT(timeline, Catch::Contains(">seconds</text>"));
  CHECK_THAT(timeline, Catch::Contains(">encode</text>"));
  const std::string matrix = svg::confusion_matrix({"Confusion", {"a", "b"}, {{3, 1}, {0, 4}}});
  CHECK_THAT(matrix, Catch::Contains("true a, predicted b: 1"));
  CHECK_THAT(matrix, Catch::Contains(">0.75</text>"));  // 3 of a's 4
  CHECK_THAT(matrix, Catch::Contains(">fraction of row</text>"));
  CHECK_THROWS_WITH(svg::confusion_matrix({"Bad", {"a", "b"}, {{1, 2}}}), Catch::Contains("not classes x classes"));
}

TEST_CASE("an image figure embeds its PNG with a title, caption and colour bar; figures sit side by side", "[svg]") {
  svg::ImageFigure figure;
  figure.title = "slide_1: gated_attention on uni";
  figure.caption = {"label 1 · predicted 0 (p = 0.700) · misclassified"};
  figure.png = "\x89PNG";
  figure.image_width = 100, figure.image_height = 50, figure.display_width = 200;
  figure.bar_label = "attention";
  figure.bar_min = 0.01, figure.bar_max = 0.5;
  const std::string image = svg::image_figure(figure);
  CHECK_THAT(image, Catch::Contains("xlink:href=\"data:image/png;base64,iVBORw==\""));
  CHECK_THAT(image, Catch::Contains("height=\"100.00\""));  // 50 px scaled by 2
  CHECK_THAT(image, Catch::Contains(">attention</text>"));
  CHECK_THAT(image, Catch::Contains(">0.500</text>"));
  CHECK_THAT(image, Catch::Contains(">label 1 · predicted 0 (p = 0.700) · misclassified</text>"));
  const std::string both = svg::side_by_side({image, image});
  const double width = std::stod(image.substr(image.find(" width=\"") + 8));
  CHECK_THAT(both, Catch::Contains("<svg x=\"" + svg::fixed(width, 0) + "\" y=\"0\" xmlns="));
  CHECK_THAT(both, Catch::Contains(" width=\"" + svg::fixed(2 * width, 0) + "\""));
}
