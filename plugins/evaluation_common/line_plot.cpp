#include "histoflow/evaluation_common/line_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace histoflow::evaluation_common {
namespace {

struct Canvas {
  RgbImage& image;
  void dot(int x, int y, const std::array<std::uint8_t, 3>& colour, int radius) {
    for (int dy = -radius; dy <= radius; ++dy)
      for (int dx = -radius; dx <= radius; ++dx) {
        const int px = x + dx, py = y + dy;
        if (px < 0 || py < 0 || px >= image.width || py >= image.height) continue;
        std::uint8_t* p = &image.pixels[(static_cast<std::size_t>(py) * image.width + px) * 3];
        p[0] = colour[0], p[1] = colour[1], p[2] = colour[2];
      }
  }
  // Bresenham; `dash` > 0 draws only every other run of `dash` pixels.
  void line(int x0, int y0, int x1, int y1, const std::array<std::uint8_t, 3>& colour, int radius, int dash = 0) {
    const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int error = dx + dy, step = 0;
    while (true) {
      if (dash == 0 || (step / dash) % 2 == 0) dot(x0, y0, colour, radius);
      ++step;
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * error;
      if (e2 >= dy) error += dy, x0 += sx;
      if (e2 <= dx) error += dx, y0 += sy;
    }
  }
};

const std::array<std::array<std::uint8_t, 3>, 10> kPalette = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44},
                                                                {214, 39, 40}, {148, 103, 189}, {140, 86, 75},
                                                                {227, 119, 194}, {127, 127, 127}, {188, 189, 34},
                                                                {23, 190, 207}}};
const std::array<const char*, 10> kPaletteNames = {"blue", "orange", "green", "red", "purple",
                                                   "brown", "pink", "grey", "olive", "cyan"};

}  // namespace

std::array<std::uint8_t, 3> palette_colour(std::size_t index) { return kPalette[index % kPalette.size()]; }
std::string palette_colour_name(std::size_t index) { return kPaletteNames[index % kPaletteNames.size()]; }

RgbImage plot_curves(const std::vector<PlotCurve>& curves, const PlotFrame& frame, int width, int height) {
  if (width < 64 || height < 64) throw std::invalid_argument("a plot must be at least 64 x 64 pixels");
  if (!(frame.x_max > frame.x_min) || !(frame.y_max > frame.y_min)) throw std::invalid_argument("a plot needs a non-empty range");
  RgbImage image{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 255)};
  Canvas canvas{image};
  const int margin = std::min(width, height) / 16, x_extent = width - 2 * margin, y_extent = height - 2 * margin;
  const auto px = [&](double x) {
    return margin + static_cast<int>(std::lround(std::clamp((x - frame.x_min) / (frame.x_max - frame.x_min), 0.0, 1.0) * x_extent));
  };
  const auto py = [&](double y) {
    return height - 1 - margin -
           static_cast<int>(std::lround(std::clamp((y - frame.y_min) / (frame.y_max - frame.y_min), 0.0, 1.0) * y_extent));
  };
  const std::array<std::uint8_t, 3> grid{225, 225, 225}, axis{0, 0, 0}, chance{150, 150, 150};
  // Grid lines at multiples of the spacing strictly inside the frame.
  const auto grid_values = [](double low, double high, double spacing) {
    std::vector<double> values;
    if (spacing <= 0) return values;
    for (auto i = static_cast<long long>(std::floor(low / spacing)) + 1; i * spacing < high - 1e-9 * spacing; ++i)
      values.push_back(static_cast<double>(i) * spacing);
    return values;
  };
  for (const double x : grid_values(frame.x_min, frame.x_max, frame.x_grid)) canvas.line(px(x), py(frame.y_min), px(x), py(frame.y_max), grid, 0);
  for (const double y : grid_values(frame.y_min, frame.y_max, frame.y_grid)) canvas.line(px(frame.x_min), py(y), px(frame.x_max), py(y), grid, 0);
  if (frame.diagonal) canvas.line(px(frame.x_min), py(frame.y_min), px(frame.x_max), py(frame.y_max), chance, 0, 6);
  canvas.line(px(frame.x_min), py(frame.y_min), px(frame.x_max), py(frame.y_min), axis, 0);
  canvas.line(px(frame.x_min), py(frame.y_min), px(frame.x_min), py(frame.y_max), axis, 0);
  canvas.line(px(frame.x_max), py(frame.y_min), px(frame.x_max), py(frame.y_max), axis, 0);
  canvas.line(px(frame.x_min), py(frame.y_max), px(frame.x_max), py(frame.y_max), axis, 0);
  for (const auto& curve : curves) {
    if (curve.x.size() != curve.y.size()) throw std::invalid_argument("a plotted curve with unequal x and y lengths");
    const int radius = std::max(0, curve.thickness / 2);
    for (std::size_t i = 1; i < curve.x.size(); ++i)
      canvas.line(px(curve.x[i - 1]), py(curve.y[i - 1]), px(curve.x[i]), py(curve.y[i]), curve.colour, radius);
    if (curve.marker > 0)
      for (std::size_t i = 0; i < curve.x.size(); ++i) canvas.dot(px(curve.x[i]), py(curve.y[i]), curve.colour, curve.marker);
  }
  return image;
}

}  // namespace histoflow::evaluation_common
