#pragma once
// The one plotting path: figures drawn as SVG text, each readable on its own (title, labelled axes with ticks,
// a legend, a colour bar where colour carries a value). The HTML report inlines them; stages that write PNG
// files rasterise them (evaluation_common/svg_raster.hpp), so a PNG follows the same rules as the report.
// Text is set in DejaVu Sans (Debian's default font), so widths can be estimated for the layout.
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace histoflow::svg {

using Rgb = std::array<std::uint8_t, 3>;

// Text for SVG/HTML content and attribute values: & < > " ' escaped; control bytes XML forbids and bytes that
// are not UTF-8 replaced by U+FFFD (a class name from a CSV must not make a figure unparsable).
std::string escape(std::string_view text);
// Fixed-point with `decimals` digits ("nan" for NaN).
std::string fixed(double value, int decimals);
// Standard base64 (RFC 4648, padded), for data: URIs.
std::string base64(std::string_view bytes);
std::string hex(const Rgb& colour);  // "#rrggbb"

// Ten distinguishable colours (Tableau 10), repeating; `palette_name` says them in words for text legends.
Rgb palette(std::size_t index);
std::string palette_name(std::size_t index);
// A value in [0, 1] (clamped) on the heat scale: blue (low) -> cyan -> yellow -> red (high).
Rgb heat_colour(double value);

// Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten, about `target` of them.
std::vector<double> nice_ticks(double low, double high, int target = 6);

struct Series {
  std::string name;  // legend text; empty: not in the legend
  std::vector<double> x, y;
  std::size_t colour = 0;  // palette index
  bool markers = false;    // a dot at every point
  bool dashed = false;
};

struct Axis {
  std::string label;
  double min = std::numeric_limits<double>::quiet_NaN();  // NaN: from the data (padded to round ticks)
  double max = std::numeric_limits<double>::quiet_NaN();
};

struct LinePlot {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  bool diagonal = false;  // the dashed chance line from (x.min, y.min) to (x.max, y.max)
  int width = 520, height = 420;
};
// Throws std::invalid_argument for a series with unequal x and y lengths.
std::string line_plot(const LinePlot& plot);

// A ROC plot to fill: false against true positive rate on [0, 1], the dashed chance diagonal.
LinePlot roc_plot(std::string title);

// A finetuning run's accuracy over training: one point per evaluation; NaN where the linear probe did not run.
struct TrainingCurves {
  std::vector<double> iteration, training_seconds, knn_accuracy, linear_accuracy;
};
// Two figures: balanced accuracy against iteration, and against training time (minutes; hours from 2 h on).
std::pair<std::string, std::string> training_curve_figures(const TrainingCurves& curves);

struct Bar {
  std::string label;
  double value = 0;
  std::string annotation;  // written after the bar; empty: the value
};
struct BarChart {
  std::string title, value_label;
  std::vector<Bar> bars;  // drawn top to bottom, horizontal
  double max = std::numeric_limits<double>::quiet_NaN();  // NaN: from the data
  int width = 640;
};
std::string bar_chart(const BarChart& chart);

struct TimelineRow {
  std::string label;
  std::vector<std::pair<double, double>> spans;  // [begin, end) in axis units
};
struct Timeline {
  std::string title, x_label;
  double end = 0;  // the axis runs 0..end
  std::vector<TimelineRow> rows;
  int width = 900;
};
std::string timeline(const Timeline& chart);

struct ConfusionMatrix {
  std::string title;
  std::vector<std::string> classes;               // row (true) and column (predicted) order
  std::vector<std::vector<std::int64_t>> counts;  // [true][predicted]
};
// Cells shaded by the row's fraction (recall on the diagonal), the count and fraction written in each, a colour
// bar for the fraction. Throws std::invalid_argument when counts is not classes x classes.
std::string confusion_matrix(const ConfusionMatrix& matrix);

struct ImageFigure {
  std::string title;
  std::vector<std::string> caption;  // lines under the title
  std::string png;                   // the encoded image, embedded as a data: URI
  int image_width = 0, image_height = 0;
  double display_width = 640;  // the image is scaled to this width
  // A heat colour bar (heat_colour) beside the image, labelled with its value range, when bar_label is set.
  std::string bar_label;
  double bar_min = 0, bar_max = 1;
};
std::string image_figure(const ImageFigure& figure);

// Figures made by the functions above, placed left to right in one SVG (top-aligned).
std::string side_by_side(const std::vector<std::string>& figures);

// The root element every figure here has (size, white background, font), around `body`.
std::string document(double width, double height, const std::string& body, const std::string& attributes = {});

}  // namespace histoflow::svg
