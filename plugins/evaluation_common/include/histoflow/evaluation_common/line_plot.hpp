#pragma once
// Curves drawn into an RGB raster: white background, a light grid, a frame, the curves in order (no text: axes
// and legend, colour by curve, are described next to the image). encode_png (histoflow/png.hpp) turns it into
// a PNG. ROC plots (roc_plot.hpp) and the finetuning run's accuracy curves are drawn with it.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "histoflow/image.hpp"
#include "histoflow/png.hpp"  // encode_png

namespace histoflow::evaluation_common {

struct PlotCurve {
  std::vector<double> x;
  std::vector<double> y;
  std::array<std::uint8_t, 3> colour{0, 0, 0};
  int thickness = 2;
  int marker = 0;  // > 0: a square of this half-width at every point
};

struct PlotFrame {
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;  // values outside are clamped to the frame
  double x_grid = 0.2, y_grid = 0.2;                  // grid spacing in data units; 0: no grid lines
  bool diagonal = false;                              // the dashed (x_min, y_min)-(x_max, y_max) line
};

// Throws std::invalid_argument on an empty range, a size under 64 pixels, or a curve with unequal x and y lengths.
RgbImage plot_curves(const std::vector<PlotCurve>& curves, const PlotFrame& frame, int width, int height);

// A distinct colour for curve `index` (a fixed 10-colour palette, then repeats) and its name for legends.
std::array<std::uint8_t, 3> palette_colour(std::size_t index);
std::string palette_colour_name(std::size_t index);

}  // namespace histoflow::evaluation_common
