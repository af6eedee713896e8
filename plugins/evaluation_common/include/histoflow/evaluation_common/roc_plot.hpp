#pragma once
// ROC curves drawn into an RGB raster (no text: the legend, colour by curve, goes into the Markdown summary).
// encode_png (histoflow/png.hpp) turns it into a PNG.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "histoflow/image.hpp"
#include "histoflow/png.hpp"  // encode_png

namespace histoflow::evaluation_common {


struct PlotCurve {
  std::vector<double> x;  // false positive rate, in [0, 1]
  std::vector<double> y;  // true positive rate, in [0, 1]
  std::array<std::uint8_t, 3> colour{0, 0, 0};
  int thickness = 2;
};

// A `size` x `size` plot: white background, grid every 0.2, the chance diagonal, then the curves in order.
RgbImage plot_roc_curves(const std::vector<PlotCurve>& curves, int size = 512);

// A distinct colour for curve `index` (a fixed 10-colour palette, then repeats) and its name for legends.
std::array<std::uint8_t, 3> palette_colour(std::size_t index);
std::string palette_colour_name(std::size_t index);

}  // namespace histoflow::evaluation_common
