// The slide-level metrics against scikit-learn 1.2 (fixtures from tools/parity/make_sklearn_fixtures_mil.py),
// bootstrap intervals, and the comparison table.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "histoflow/evaluation_common/auroc.hpp"
#include "histoflow/evaluation_common/bootstrap.hpp"
#include "histoflow/evaluation_common/comparison_table.hpp"
#include "histoflow/evaluation_common/reference_table.hpp"
#include "histoflow/evaluation_common/svg_raster.hpp"
#include "histoflow/svg_plot.hpp"
#include "slide_metrics.hpp"
#include "support/fresh_folder.hpp"

using namespace histoflow;

namespace {

nlohmann::json fixtures() {
  std::ifstream in(std::string(HISTOFLOW_SOURCE_DIR) + "/tests/fixtures/mil/sklearn_metrics.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("AUROC, balanced accuracy and F1 match scikit-learn to 1e-6", "[mil][metrics]") {
  const auto all = fixtures();
  REQUIRE(all["cases"].size() >= 6);
  for (const auto& c : all["cases"]) {
    INFO("case " << c["name"].get<std::string>());
    const auto labels = c["labels"].get<std::vector<std::int64_t>>();
    const auto probabilities = c["probabilities"].get<std::vector<double>>();
    const int classes = c["classes"].get<int>();
    CHECK(evaluation_common::auroc(labels, probabilities, classes) == Approx(c["auroc"].get<double>()).margin(1e-6));
    const auto m = mil::slide_metrics(labels, probabilities, classes);
    CHECK(m.at("auroc") == Approx(c["auroc"].get<double>()).margin(1e-6));
    CHECK(m.at("balanced_accuracy") == Approx(c["balanced_accuracy"].get<double>()).margin(1e-6));
    CHECK(m.at("f1") == Approx(c["f1"].get<double>()).margin(1e-6));
    if (classes == 2) {
      std::vector<bool> positive;
      std::vector<double> scores;
      for (std::size_t i = 0; i < labels.size(); ++i) positive.push_back(labels[i] == 1), scores.push_back(probabilities[2 * i + 1]);
      const auto roc = evaluation_common::roc_curve(positive, scores);
      const auto fpr = c["roc_fpr"].get<std::vector<double>>(), tpr = c["roc_tpr"].get<std::vector<double>>();
      REQUIRE(roc.fpr.size() == fpr.size());  // the same points kept by drop_intermediate
      for (std::size_t i = 0; i < fpr.size(); ++i) {
        CHECK(roc.fpr[i] == Approx(fpr[i]).margin(1e-12));
        CHECK(roc.tpr[i] == Approx(tpr[i]).margin(1e-12));
      }
    }
  }
}

TEST_CASE("AUROC is undefined with one class: an error, NaN in the metric set", "[mil][metrics]") {
  CHECK_THROWS_WITH(evaluation_common::binary_auroc({true, true}, {0.2, 0.4}), Catch::Contains("no negative"));
  const auto m = mil::slide_metrics({1, 1, 1}, {0.2, 0.8, 0.6, 0.4, 0.1, 0.9}, 2);
  CHECK(std::isnan(m.at("auroc")));
  CHECK(m.at("balanced_accuracy") == Approx(2.0 / 3.0));
}

TEST_CASE("percentiles match numpy and bootstrap intervals are deterministic", "[mil][metrics]") {
  const auto p = fixtures()["percentile"];
  const auto values = p["values"].get<std::vector<double>>();
  const auto q = p["q"].get<std::vector<double>>(), expected = p["expected"].get<std::vector<double>>();
  for (std::size_t i = 0; i < q.size(); ++i) CHECK(evaluation_common::percentile(values, q[i]) == Approx(expected[i]).margin(1e-12));

  const std::vector<std::int64_t> labels = {0, 0, 0, 0, 1, 1, 1, 1, 0, 1};
  const std::vector<double> probabilities = {0.9, 0.1, 0.8, 0.2, 0.6, 0.4, 0.3, 0.7, 0.4, 0.6,
                                             0.2, 0.8, 0.1, 0.9, 0.5, 0.5, 0.35, 0.65, 0.45, 0.55};
  mil::MetricSummary a, b, c;
  mil::add_bootstrap_intervals(a, labels, probabilities, 2, 200, 5);
  mil::add_bootstrap_intervals(b, labels, probabilities, 2, 200, 5);
  mil::add_bootstrap_intervals(c, labels, probabilities, 2, 200, 6);
  CHECK(a.ci_low == b.ci_low);
  CHECK(a.ci_high == b.ci_high);
  CHECK(a.ci_low != c.ci_low);
  const double point = mil::slide_metrics(labels, probabilities, 2).at("auroc");
  CHECK(a.ci_low.at("auroc") <= point);
  CHECK(a.ci_high.at("auroc") >= point);
  CHECK(a.ci_high.at("auroc") <= 1.0);
}

TEST_CASE("fold summaries use the sample standard deviation", "[mil][metrics]") {
  const auto s = mil::summarise_folds({{{"auroc", 0.8}, {"balanced_accuracy", 0.7}, {"f1", 0.6}},
                                       {{"auroc", 0.9}, {"balanced_accuracy", 0.7}, {"f1", 0.8}}});
  CHECK(s.mean.at("auroc") == Approx(0.85));
  CHECK(s.sd.at("auroc") == Approx(0.0707106781).epsilon(1e-8));  // np.std(ddof=1)
  CHECK(s.sd.at("balanced_accuracy") == Approx(0.0).margin(1e-12));
  const auto one = mil::summarise_folds({{{"auroc", 0.8}, {"balanced_accuracy", 0.7}, {"f1", 0.6}}});
  CHECK(one.sd.empty());
}

TEST_CASE("the comparison table takes any metric set, one row per encoder", "[mil][comparison]") {
  evaluation_common::EvaluationRecord a{"resnet50_trunc", "gated_attention", "in-domain", {{"auroc", 0.91234}}, {{"auroc", 0.0312}}, {}, {}, "mil_a"};
  evaluation_common::EvaluationRecord b{"resnet50_trunc", "gated_attention", "external (ensemble)", {{"auroc", 0.85}},
                           {}, {{"auroc", 0.8}}, {{"auroc", 0.9}}, "mil_a"};
  evaluation_common::EvaluationRecord c{"dinov2_vits14", "knn", "test", {{"accuracy", 0.75}, {"weighted_f1", 0.7}}, {}, {}, {}, "knn"};
  const auto table = evaluation_common::build_comparison_table({c, b, a});
  REQUIRE(table.rows == std::vector<std::string>{"dinov2_vits14", "resnet50_trunc"});
  REQUIRE(table.columns.size() == 4);
  CHECK(table.columns[0] == "gated_attention · in-domain · auroc");  // in-domain before external
  CHECK(table.columns[1] == "gated_attention · external (ensemble) · auroc");
  CHECK(table.cells.at("resnet50_trunc").at(table.columns[0]) == "0.912 ± 0.031");
  CHECK(table.cells.at("resnet50_trunc").at(table.columns[1]) == "0.850 [0.800, 0.900]");
  const auto markdown = evaluation_common::comparison_markdown(table);
  CHECK_THAT(markdown, Catch::Contains("| dinov2_vits14 | – | – | 0.750 | 0.700 |"));
  const auto csv = evaluation_common::comparison_csv({a, c});
  CHECK_THAT(csv, Catch::StartsWith("encoder,method,setting,metric,mean,sd,ci_low,ci_high,source\n"));
  CHECK_THAT(csv, Catch::Contains("resnet50_trunc,gated_attention,in-domain,auroc,0.91234,0.0312,,,mil_a"));
  // The same encoder from two stages in one cell: the rows are told apart by their source.
  auto a2 = a;
  a2.source = "mil_b";
  const auto twice = evaluation_common::build_comparison_table({a, a2});
  CHECK(twice.rows == std::vector<std::string>{"resnet50_trunc (mil_a)", "resnet50_trunc (mil_b)"});
}

TEST_CASE("a reference table: its rows beside the run's, the differences, and clear errors", "[mil][comparison]") {
  const auto folder = testing::fresh_folder("reference-table");
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(folder / name) << text;
    return folder / name;
  };
  const auto good = write("paper.csv",
                          "encoder,method,setting,metric,value,source\n"
                          "dinov2_vits14_ft,20-NN (T=0.07),test,balanced_accuracy,0.938,\"Roth et al., ISBI 2024\"\n"
                          "dinov2_vits14_ft,linear,test,balanced_accuracy,0.927,Roth et al. | Table 2\n"
                          "uni,linear,test,balanced_accuracy,0.95,another paper\n");
  const auto reference = evaluation_common::read_reference_table(good);
  REQUIRE(reference.size() == 3);
  CHECK(reference[0].source == "Roth et al., ISBI 2024");
  CHECK(reference[2].line == 4);

  // The run scored the finetuned model with both methods and no UNI; one metric has no reference.
  const evaluation_common::EvaluationRecord knn{"dinov2_vits14_ft", "20-NN (T=0.07)", "test", {{"balanced_accuracy", 0.95}, {"accuracy", 0.9}}, {}, {}, {}, "knn"};
  const evaluation_common::EvaluationRecord linear{"dinov2_vits14_ft", "linear", "test", {{"balanced_accuracy", 0.9}}, {}, {}, {}, "linear"};
  const auto differences = evaluation_common::compare_with_reference({knn, linear}, reference);
  REQUIRE(differences.size() == 2);
  CHECK(differences[0].difference() == Approx(0.012));
  CHECK(differences[1].difference() == Approx(-0.027));
  const auto markdown = evaluation_common::reference_markdown(differences);
  CHECK_THAT(markdown, Catch::Contains("| dinov2_vits14_ft | 20-NN (T=0.07) · test · balanced_accuracy | 0.950 | 0.938 | +0.012 | Roth et al., ISBI 2024 |"));
  CHECK_THAT(markdown, Catch::Contains("| -0.027 | Roth et al. \\| Table 2 |"));  // a '|' in the source stays in its cell
  CHECK_THAT(evaluation_common::reference_csv(differences),
             Catch::Contains("dinov2_vits14_ft,linear,test,balanced_accuracy,0.9,0.927,-0.027,Roth et al. | Table 2"));

  // Beside the run's rows: one row per reference encoder, named as such, for the run's columns only.
  auto shown = evaluation_common::reference_records(reference, {knn, linear});
  shown.push_back(knn);
  shown.push_back(linear);
  const auto table = evaluation_common::build_comparison_table(shown);
  CHECK(table.rows == std::vector<std::string>{"dinov2_vits14_ft", "dinov2_vits14_ft (reference)", "uni (reference)"});
  CHECK(table.cells.at("uni (reference)").at("linear · test · balanced_accuracy") == "0.950");
  const auto knn_only = evaluation_common::reference_records(reference, {knn});  // no linear column: no UNI row
  REQUIRE(knn_only.size() == 1);
  CHECK(knn_only[0].row == "dinov2_vits14_ft (reference)");
  CHECK(knn_only[0].mean.size() == 1);

  CHECK_THROWS_WITH(evaluation_common::read_reference_table(write("no_value.csv", "encoder,method,setting,metric,source\nx,y,z,m,s\n")),
                    Catch::Contains("no_value.csv' line 1: no column 'value'"));
  CHECK_THROWS_WITH(evaluation_common::read_reference_table(write("bad_value.csv", "encoder,method,setting,metric,value,source\nx,y,z,m,0.9x,s\n")),
                    Catch::Contains("bad_value.csv' line 2: value '0.9x' is not a number"));
  CHECK_THROWS_WITH(evaluation_common::read_reference_table(write("twice.csv", "encoder,method,setting,metric,value,source\nx,y,z,m,0.9,s\nx,y,z,m,0.8,t\n")),
                    Catch::Contains("twice.csv' line 3: x · y · z · m is given twice"));
}

TEST_CASE("ROC plot: the SVG figure rasterised draws the curve in its colour, with title, axes and legend", "[mil][metrics]") {
  svg::LinePlot plot;
  plot.title = "ROC: gated_attention on uni";
  plot.x = {"false positive rate", 0, 1};
  plot.y = {"true positive rate", 0, 1};
  plot.diagonal = true;
  plot.series.push_back({"fold 0: AUROC 1.000", {0, 0, 1}, {0, 1, 1}, 0});
  const std::string figure = svg::line_plot(plot);
  CHECK_THAT(figure, Catch::Contains(">ROC: gated_attention on uni</text>"));
  CHECK_THAT(figure, Catch::Contains(">false positive rate</text>"));
  CHECK_THAT(figure, Catch::Contains(">fold 0: AUROC 1.000</text>"));
  const auto image = evaluation_common::rasterise_svg(figure);
  CHECK(image.width == plot.width);
  const auto colour = svg::palette(0);
  std::size_t coloured = 0, dark = 0;
  for (std::size_t i = 0; i < image.pixels.size(); i += 3) {
    coloured += image.pixels[i] == colour[0] && image.pixels[i + 1] == colour[1] && image.pixels[i + 2] == colour[2];
    dark += image.pixels[i] < 64 && image.pixels[i + 1] < 64 && image.pixels[i + 2] < 64;
  }
  CHECK(coloured > 300);  // the left edge and the top edge of a perfect curve, and the legend's swatch
  CHECK(dark > 500);      // the frame, the ticks and the text
}
