#include "histoflow/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace histoflow::svg {
namespace {

constexpr double kFontSize = 12;
constexpr double kTitleSize = 14;
// DejaVu Sans averages about 0.6 em per character: enough to size label columns and legends.
double text_width(std::string_view text, double size = kFontSize) { return 0.6 * size * static_cast<double>(text.size()); }

const std::array<Rgb, 10> kPalette = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
                                      {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}}};
const std::array<const char*, 10> kPaletteNames = {"blue", "orange", "green", "red", "purple",
                                                   "brown", "pink", "grey", "olive", "cyan"};

// Appends SVG elements; every coordinate is written with 2 decimals.
class Canvas {
 public:
  Canvas(double width, double height) : width_(width), height_(height) {}
  void text(double x, double y, std::string_view content, const char* anchor = "start", double size = kFontSize,
            const char* extra = "") {
    out_ << "<text x=\"" << fixed(x, 2) << "\" y=\"" << fixed(y, 2) << "\" text-anchor=\"" << anchor << "\" font-size=\""
         << size << "\"" << extra << ">" << escape(content) << "</text>\n";
  }
  void vertical_text(double x, double y, std::string_view content) {
    out_ << "<text transform=\"translate(" << fixed(x, 2) << ' ' << fixed(y, 2) << ") rotate(-90)\" text-anchor=\"middle\">"
         << escape(content) << "</text>\n";
  }
  void line(double x0, double y0, double x1, double y1, std::string_view stroke, double width = 1, bool dashed = false) {
    out_ << "<line x1=\"" << fixed(x0, 2) << "\" y1=\"" << fixed(y0, 2) << "\" x2=\"" << fixed(x1, 2) << "\" y2=\"" << fixed(y1, 2)
         << "\" stroke=\"" << stroke << "\" stroke-width=\"" << width << "\"" << (dashed ? " stroke-dasharray=\"5 4\"" : "") << "/>\n";
  }
  void rect(double x, double y, double w, double h, std::string_view fill, std::string_view stroke = "none",
            std::string_view tooltip = {}) {
    out_ << "<rect x=\"" << fixed(x, 2) << "\" y=\"" << fixed(y, 2) << "\" width=\"" << fixed(std::max(w, 0.0), 2) << "\" height=\""
         << fixed(std::max(h, 0.0), 2) << "\" fill=\"" << fill << "\" stroke=\"" << stroke << "\"";
    if (tooltip.empty()) {
      out_ << "/>\n";
    } else {
      out_ << "><title>" << escape(tooltip) << "</title></rect>\n";
    }
  }
  void polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke, bool dashed) {
    out_ << "<polyline fill=\"none\" stroke=\"" << stroke << "\" stroke-width=\"2\" stroke-linejoin=\"round\""
         << (dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"";
    for (const auto& [x, y] : points) out_ << fixed(x, 2) << ',' << fixed(y, 2) << ' ';
    out_ << "\"/>\n";
  }
  void circle(double x, double y, double r, std::string_view fill) {
    out_ << "<circle cx=\"" << fixed(x, 2) << "\" cy=\"" << fixed(y, 2) << "\" r=\"" << r << "\" fill=\"" << fill << "\"/>\n";
  }
  void raw(std::string_view element) { out_ << element; }
  double height() const { return height_; }
  void set_height(double height) { height_ = height; }
  std::string finish() const { return document(width_, height_, out_.str()); }

 private:
  double width_, height_;
  std::ostringstream out_;
};

int tick_decimals(const std::vector<double>& ticks) {
  if (ticks.size() < 2) return 2;
  const double step = std::abs(ticks[1] - ticks[0]);
  return step > 0 ? std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6) : 2;
}

// The axis range: the given limits, or the data's padded out to round ticks.
std::pair<double, double> axis_range(const Axis& axis, double data_min, double data_max) {
  double low = std::isnan(axis.min) ? data_min : axis.min, high = std::isnan(axis.max) ? data_max : axis.max;
  if (!std::isfinite(low) || !std::isfinite(high)) low = 0, high = 1;
  if (high <= low) {
    const double pad = low == 0 ? 1 : std::abs(low) * 0.1;
    high = low + pad;
    if (std::isnan(axis.min)) low -= pad;
  }
  if (std::isnan(axis.min) || std::isnan(axis.max)) {
    const auto ticks = nice_ticks(low, high);
    if (ticks.size() >= 2) {
      const double step = ticks[1] - ticks[0];
      if (std::isnan(axis.min)) low = std::floor(low / step + 1e-9) * step;
      if (std::isnan(axis.max)) high = std::ceil(high / step - 1e-9) * step;
    }
  }
  return {low, high};
}

// One legend entry per named series, in rows under the plot.
double draw_legend(Canvas& canvas, const std::vector<std::pair<std::string, Rgb>>& entries, double x, double y,
                   const std::vector<bool>& dashed) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const double row = y + 16 * static_cast<double>(i);
    canvas.line(x, row - 4, x + 22, row - 4, hex(entries[i].second), 3, dashed[i]);
    canvas.text(x + 28, row, entries[i].first);
  }
  return 16 * static_cast<double>(entries.size());
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    // The length of a well-formed UTF-8 sequence starting here, 0 for a byte that cannot start one.
    const std::size_t length = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (std::size_t k = 1; valid && k < length; ++k) valid = (static_cast<unsigned char>(text[i + k]) >> 6) == 0x2;
    if (!valid || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += valid ? length : 1;
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.append(text.substr(i, length));
    }
    i += length;
  }
  return out;
}

std::string document(double width, double height, const std::string& body, const std::string& attributes) {
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"" << fixed(width, 0)
      << "\" height=\"" << fixed(height, 0) << "\" viewBox=\"0 0 " << fixed(width, 0) << ' ' << fixed(height, 0)
      << "\" font-family=\"DejaVu Sans, Verdana, Arial, sans-serif\" font-size=\"" << kFontSize << "\"" << attributes << ">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
      << body << "</svg>\n";
  return svg.str();
}

std::string fixed(double value, int decimals) {
  if (std::isnan(value)) return "nan";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  std::string text(buffer);
  if (text.find_first_not_of("-0.") == std::string::npos && text[0] == '-') text.erase(0, 1);  // no "-0.00"
  return text;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                   static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[n >> 18], out += kAlphabet[(n >> 12) & 63], out += kAlphabet[(n >> 6) & 63], out += kAlphabet[n & 63];
  }
  if (i < bytes.size()) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[n >> 18], out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string hex(const Rgb& colour) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", colour[0], colour[1], colour[2]);
  return buffer;
}

Rgb palette(std::size_t index) { return kPalette[index % kPalette.size()]; }
std::string palette_name(std::size_t index) { return kPaletteNames[index % kPaletteNames.size()]; }

Rgb heat_colour(double v) {
  v = std::clamp(std::isnan(v) ? 0.0 : v, 0.0, 1.0);
  const double r = std::clamp(1.5 - std::abs(4 * v - 3), 0.0, 1.0), g = std::clamp(1.5 - std::abs(4 * v - 2), 0.0, 1.0),
               b = std::clamp(1.5 - std::abs(4 * v - 1), 0.0, 1.0);
  return {static_cast<std::uint8_t>(std::lround(255 * r)), static_cast<std::uint8_t>(std::lround(255 * g)),
          static_cast<std::uint8_t>(std::lround(255 * b))};
}

std::vector<double> nice_ticks(double low, double high, int target) {
  if (!std::isfinite(low) || !std::isfinite(high) || high <= low) return {low};
  const double raw = (high - low) / std::max(1, target - 1);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * power >= raw) {
      step = m * power;
      break;
    }
  std::vector<double> ticks;
  for (auto i = static_cast<long long>(std::ceil(low / step - 1e-9)); static_cast<double>(i) * step <= high + 1e-9 * step; ++i)
    ticks.push_back(std::abs(static_cast<double>(i) * step) < step * 1e-9 ? 0.0 : static_cast<double>(i) * step);
  return ticks;
}

std::string line_plot(const LinePlot& plot) {
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const auto& s : plot.series) {
    if (s.x.size() != s.y.size()) throw std::invalid_argument("plot '" + plot.title + "': series '" + s.name + "' has unequal x and y lengths");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_min = std::min(x_min, s.x[i]), x_max = std::max(x_max, s.x[i]);
      y_min = std::min(y_min, s.y[i]), y_max = std::max(y_max, s.y[i]);
    }
  }
  const auto [xl, xh] = axis_range(plot.x, x_min, x_max);
  const auto [yl, yh] = axis_range(plot.y, y_min, y_max);
  const auto x_ticks = nice_ticks(xl, xh), y_ticks = nice_ticks(yl, yh);
  const int x_decimals = tick_decimals(x_ticks), y_decimals = tick_decimals(y_ticks);
  double y_label_width = 0;
  for (const double t : y_ticks) y_label_width = std::max(y_label_width, text_width(fixed(t, y_decimals)));
  const double left = 30 + y_label_width + 8, right = 16, top = 34, plot_height = plot.height - top - 48;
  const double plot_width = plot.width - left - right;
  std::vector<std::pair<std::string, Rgb>> legend;
  std::vector<bool> legend_dashed;
  for (const auto& s : plot.series)
    if (!s.name.empty()) legend.emplace_back(s.name, palette(s.colour)), legend_dashed.push_back(s.dashed);
  Canvas canvas(plot.width, plot.height + (legend.empty() ? 0 : 8 + 16.0 * static_cast<double>(legend.size())));
  // Named copies: lambdas cannot capture structured bindings before clang 16.
  const double x_low = xl, x_high = xh, y_low = yl, y_high = yh;
  const auto px = [&](double x) { return left + std::clamp((x - x_low) / (x_high - x_low), 0.0, 1.0) * plot_width; };
  const auto py = [&](double y) { return top + plot_height - std::clamp((y - y_low) / (y_high - y_low), 0.0, 1.0) * plot_height; };

  canvas.text(plot.width / 2.0, 20, plot.title, "middle", kTitleSize, " font-weight=\"bold\"");
  for (const double t : x_ticks) {
    if (t < xl - 1e-12 || t > xh + 1e-12) continue;
    canvas.line(px(t), top, px(t), top + plot_height, "#e6e6e6");
    canvas.line(px(t), top + plot_height, px(t), top + plot_height + 5, "#333333");
    canvas.text(px(t), top + plot_height + 18, fixed(t, x_decimals), "middle");
  }
  for (const double t : y_ticks) {
    if (t < yl - 1e-12 || t > yh + 1e-12) continue;
    canvas.line(left, py(t), left + plot_width, py(t), "#e6e6e6");
    canvas.line(left - 5, py(t), left, py(t), "#333333");
    canvas.text(left - 8, py(t) + 4, fixed(t, y_decimals), "end");
  }
  canvas.rect(left, top, plot_width, plot_height, "none", "#333333");
  canvas.text(left + plot_width / 2, top + plot_height + 38, plot.x.label, "middle");
  canvas.vertical_text(14, top + plot_height / 2, plot.y.label);
  if (plot.diagonal) canvas.line(px(xl), py(yl), px(xh), py(yh), "#999999", 1, true);
  for (const auto& s : plot.series) {
    std::vector<std::pair<double, double>> points;
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) points.emplace_back(px(s.x[i]), py(s.y[i]));
    const std::string colour = hex(palette(s.colour));
    if (points.size() > 1) canvas.polyline(points, colour, s.dashed);
    if (s.markers || points.size() == 1)
      for (const auto& [x, y] : points) canvas.circle(x, y, 3, colour);
  }
  if (!legend.empty()) draw_legend(canvas, legend, left, plot.height + 4, legend_dashed);
  return canvas.finish();
}

LinePlot roc_plot(std::string title) {
  LinePlot plot;
  plot.title = std::move(title);
  plot.x = {"false positive rate", 0, 1};
  plot.y = {"true positive rate", 0, 1};
  plot.diagonal = true;
  plot.width = 560;
  plot.height = 440;
  return plot;
}

std::pair<std::string, std::string> training_curve_figures(const TrainingCurves& curves) {
  double last_seconds = 0;
  for (const double s : curves.training_seconds)
    if (std::isfinite(s)) last_seconds = std::max(last_seconds, s);
  const bool hours = last_seconds >= 2 * 3600;
  const auto panel = [&](const std::string& title, const std::string& x_label, const std::vector<double>& x) {
    LinePlot plot;
    plot.title = title;
    plot.x = {x_label, 0};
    plot.y = {"balanced accuracy (test patches)", 0, 1};
    plot.width = 480;
    Series knn{"teacher k-NN", {}, {}, 0, true}, probe{"teacher linear probe", {}, {}, 1, true};
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (i < curves.knn_accuracy.size()) knn.x.push_back(x[i]), knn.y.push_back(curves.knn_accuracy[i]);
      if (i < curves.linear_accuracy.size() && std::isfinite(curves.linear_accuracy[i]))
        probe.x.push_back(x[i]), probe.y.push_back(curves.linear_accuracy[i]);
    }
    plot.series.push_back(knn);
    if (!probe.x.empty()) plot.series.push_back(probe);
    return line_plot(plot);
  };
  std::vector<double> time;
  for (const double s : curves.training_seconds) time.push_back(s / (hours ? 3600 : 60));
  return {panel("Accuracy against iteration", "iteration", curves.iteration),
          panel("Accuracy against training time", hours ? "training time (hours)" : "training time (minutes)", time)};
}

std::string bar_chart(const BarChart& chart) {
  double label_width = 0, data_max = 0, annotation_width = 0;
  for (const auto& b : chart.bars) {
    label_width = std::max(label_width, text_width(b.label));
    annotation_width = std::max(annotation_width, text_width(b.annotation.empty() ? fixed(b.value, 2) : b.annotation));
    if (std::isfinite(b.value)) data_max = std::max(data_max, b.value);
  }
  label_width = std::min(label_width, chart.width * 0.4);
  const double high = std::isfinite(chart.max) && chart.max > 0 ? chart.max : data_max > 0 ? data_max : 1;
  const double left = label_width + 16, right = annotation_width + 16, top = 34, row = 22;
  const double bars_height = row * static_cast<double>(chart.bars.size()), plot_width = std::max(40.0, chart.width - left - right);
  Canvas canvas(chart.width, top + bars_height + 50);
  canvas.text(chart.width / 2.0, 20, chart.title, "middle", kTitleSize, " font-weight=\"bold\"");
  const auto ticks = nice_ticks(0, high);
  const int decimals = tick_decimals(ticks);
  const auto px = [&](double v) { return left + std::clamp(v / high, 0.0, 1.0) * plot_width; };
  for (const double t : ticks) {
    if (t > high + 1e-12) continue;
    canvas.line(px(t), top, px(t), top + bars_height, "#e6e6e6");
    canvas.text(px(t), top + bars_height + 16, fixed(t, decimals), "middle");
  }
  for (std::size_t i = 0; i < chart.bars.size(); ++i) {
    const auto& b = chart.bars[i];
    const double y = top + row * static_cast<double>(i);
    canvas.text(left - 8, y + row / 2 + 4, b.label, "end");
    const std::string annotation = b.annotation.empty() ? fixed(b.value, 2) : b.annotation;
    canvas.rect(left, y + 3, px(std::isfinite(b.value) ? b.value : 0) - left, row - 6, hex(palette(0)), "none", b.label + ": " + annotation);
    canvas.text(px(std::isfinite(b.value) ? b.value : 0) + 6, y + row / 2 + 4, annotation);
  }
  canvas.line(left, top, left, top + bars_height, "#333333");
  canvas.line(left, top + bars_height, left + plot_width, top + bars_height, "#333333");
  canvas.text(left + plot_width / 2, top + bars_height + 38, chart.value_label, "middle");
  return canvas.finish();
}

std::string timeline(const Timeline& chart) {
  double label_width = 0;
  for (const auto& r : chart.rows) label_width = std::max(label_width, text_width(r.label));
  label_width = std::min(label_width, chart.width * 0.35);
  const double left = label_width + 16, right = 20, top = 34, row = 20;
  const double rows_height = row * static_cast<double>(chart.rows.size()), plot_width = std::max(40.0, chart.width - left - right);
  const double end = chart.end > 0 ? chart.end : 1;
  Canvas canvas(chart.width, top + rows_height + 50);
  canvas.text(chart.width / 2.0, 20, chart.title, "middle", kTitleSize, " font-weight=\"bold\"");
  const auto px = [&](double v) { return left + std::clamp(v / end, 0.0, 1.0) * plot_width; };
  const auto ticks = nice_ticks(0, end);
  const int decimals = tick_decimals(ticks);
  for (const double t : ticks) {
    if (t > end + 1e-12) continue;
    canvas.line(px(t), top, px(t), top + rows_height, "#e6e6e6");
    canvas.text(px(t), top + rows_height + 16, fixed(t, decimals), "middle");
  }
  for (std::size_t i = 0; i < chart.rows.size(); ++i) {
    const double y = top + row * static_cast<double>(i);
    if (i % 2 == 1) canvas.rect(left, y, plot_width, row, "#f6f6f6");
    canvas.text(left - 8, y + row / 2 + 4, chart.rows[i].label, "end");
    const std::string colour = hex(palette(i));
    for (const auto& [begin, finish] : chart.rows[i].spans)
      canvas.rect(px(begin), y + 3, std::max(px(finish) - px(begin), 0.75), row - 6, colour);
  }
  canvas.rect(left, top, plot_width, rows_height, "none", "#333333");
  canvas.text(left + plot_width / 2, top + rows_height + 38, chart.x_label, "middle");
  return canvas.finish();
}

std::string confusion_matrix(const ConfusionMatrix& matrix) {
  const std::size_t n = matrix.classes.size();
  if (matrix.counts.size() != n) throw std::invalid_argument("confusion matrix '" + matrix.title + "': counts are not classes x classes");
  for (const auto& r : matrix.counts)
    if (r.size() != n) throw std::invalid_argument("confusion matrix '" + matrix.title + "': counts are not classes x classes");
  double label_width = 0;
  for (const auto& c : matrix.classes) label_width = std::max(label_width, text_width(c));
  label_width = std::min(label_width, 160.0);
  const double cell = 64, left = 30 + label_width + 10, top = 56, grid = cell * static_cast<double>(n);
  const double width = std::max(left + grid + 130, text_width(matrix.title, kTitleSize) + 20);
  Canvas canvas(width, top + grid + 50);
  canvas.text(width / 2, 20, matrix.title, "middle", kTitleSize, " font-weight=\"bold\"");
  canvas.text(left + grid / 2, 42, "predicted class", "middle");
  canvas.vertical_text(14, top + grid / 2, "true class");
  // White (0) to dark blue (1): the fraction of the true class predicted as the column's class.
  const auto shade = [](double f) {
    f = std::clamp(f, 0.0, 1.0);
    return Rgb{static_cast<std::uint8_t>(std::lround(255 - f * (255 - 8))), static_cast<std::uint8_t>(std::lround(255 - f * (255 - 48))),
               static_cast<std::uint8_t>(std::lround(255 - f * (255 - 107)))};
  };
  for (std::size_t r = 0; r < n; ++r) {
    std::int64_t total = 0;
    for (const auto v : matrix.counts[r]) total += v;
    canvas.text(left - 8, top + cell * (static_cast<double>(r) + 0.5) + 4, matrix.classes[r], "end");
    for (std::size_t c = 0; c < n; ++c) {
      const double f = total > 0 ? static_cast<double>(matrix.counts[r][c]) / static_cast<double>(total) : 0;
      const double x = left + cell * static_cast<double>(c), y = top + cell * static_cast<double>(r);
      canvas.rect(x, y, cell, cell, hex(shade(f)), "#ffffff",
                  "true " + matrix.classes[r] + ", predicted " + matrix.classes[c] + ": " + std::to_string(matrix.counts[r][c]));
      const char* ink = f > 0.5 ? " fill=\"#ffffff\"" : " fill=\"#000000\"";
      canvas.text(x + cell / 2, y + cell / 2, std::to_string(matrix.counts[r][c]), "middle", kFontSize + 1, ink);
      canvas.text(x + cell / 2, y + cell / 2 + 15, fixed(f, 2), "middle", kFontSize - 2, ink);
    }
  }
  for (std::size_t c = 0; c < n; ++c)
    canvas.text(left + cell * (static_cast<double>(c) + 0.5), top + grid + 16, matrix.classes[c], "middle");
  // The colour bar: the row fraction's scale.
  const double bar_x = left + grid + 24, steps = 20;
  for (int i = 0; i < static_cast<int>(steps); ++i)
    canvas.rect(bar_x, top + grid * (1 - (i + 1) / steps), 14, grid / steps + 0.5, hex(shade((i + 0.5) / steps)));
  canvas.rect(bar_x, top, 14, grid, "none", "#333333");
  canvas.text(bar_x + 20, top + 10, "1.0");
  canvas.text(bar_x + 20, top + grid, "0.0");
  canvas.text(bar_x, top + grid + 32, "fraction of row", "start", kFontSize - 2);
  return canvas.finish();
}

std::string image_figure(const ImageFigure& figure) {
  const double scale = figure.image_width > 0 ? figure.display_width / figure.image_width : 1;
  const double image_height = figure.image_height * scale, top = 30 + 16.0 * static_cast<double>(figure.caption.size());
  const bool bar = !figure.bar_label.empty();
  const double width = figure.display_width + (bar ? 110 : 0) + 20;
  Canvas canvas(width, top + image_height + 12);
  canvas.text(10, 20, figure.title, "start", kTitleSize, " font-weight=\"bold\"");
  for (std::size_t i = 0; i < figure.caption.size(); ++i) canvas.text(10, 38 + 16 * static_cast<double>(i), figure.caption[i]);
  canvas.raw("<image x=\"10\" y=\"" + fixed(top, 2) + "\" width=\"" + fixed(figure.display_width, 2) + "\" height=\"" +
             fixed(image_height, 2) + "\" preserveAspectRatio=\"none\" xlink:href=\"data:image/png;base64," + base64(figure.png) +
             "\"/>\n");
  if (bar) {
    const double x = 10 + figure.display_width + 16, height = std::min(image_height, 240.0), steps = 32;
    for (int i = 0; i < static_cast<int>(steps); ++i)
      canvas.rect(x, top + height * (1 - (i + 1) / steps), 14, height / steps + 0.5, hex(heat_colour((i + 0.5) / steps)));
    canvas.rect(x, top, 14, height, "none", "#333333");
    const int decimals = std::abs(figure.bar_max - figure.bar_min) < 0.01 ? 4 : 3;
    canvas.text(x + 20, top + 10, fixed(figure.bar_max, decimals));
    canvas.text(x + 20, top + height / 2 + 4, fixed((figure.bar_min + figure.bar_max) / 2, decimals));
    canvas.text(x + 20, top + height, fixed(figure.bar_min, decimals));
    canvas.text(x, top + height + 16, figure.bar_label, "start", kFontSize - 1);
  }
  return canvas.finish();
}

std::string side_by_side(const std::vector<std::string>& figures) {
  // Every figure here starts `<svg xmlns=... width="W" height="H"`: nested, each at its x offset.
  const auto attribute = [](const std::string& figure, const std::string& name) {
    const auto at = figure.find(" " + name + "=\"");
    if (at == std::string::npos) throw std::invalid_argument("side_by_side: a figure without a " + name);
    return std::stod(figure.substr(at + name.size() + 3));
  };
  double width = 0, height = 0;
  std::ostringstream body;
  for (const auto& figure : figures) {
    if (figure.rfind("<svg ", 0) != 0) throw std::invalid_argument("side_by_side: not an SVG figure");
    body << "<svg x=\"" << fixed(width, 0) << "\" y=\"0\" " << figure.substr(5);
    width += attribute(figure, "width");
    height = std::max(height, attribute(figure, "height"));
  }
  Canvas canvas(width, height);
  canvas.raw(body.str());
  return canvas.finish();
}

}  // namespace histoflow::svg
