#include "histoflow/evaluation_common/confusion_matrix_image.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>


namespace histoflow::evaluation_common {
namespace {

// 3x5 digit glyphs, one row per entry, bit 2 = left column.
constexpr std::array<std::array<std::uint8_t, 5>, 10> kDigits = {{
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
}};

void fill(RgbImage& c, int x0, int y0, int w, int h, std::array<std::uint8_t, 3> rgb) {
  for (int y = std::max(0, y0); y < std::min(c.height, y0 + h); ++y)
    for (int x = std::max(0, x0); x < std::min(c.width, x0 + w); ++x)
      std::copy(rgb.begin(), rgb.end(), c.pixels.begin() + (static_cast<std::ptrdiff_t>(y) * c.width + x) * 3);
}

void draw_number(RgbImage& c, int cx, int cy, int cell, std::int64_t value, std::array<std::uint8_t, 3> rgb) {
  const std::string text = std::to_string(value);
  const int units_w = static_cast<int>(text.size()) * 4 - 1;  // 3 columns per digit, 1 of spacing
  const int scale = std::min({3, (cell - 4) / units_w, (cell - 4) / 5});
  if (scale < 1) return;  // does not fit: the CSV has the number
  int x = cx + (cell - units_w * scale) / 2;
  const int y = cy + (cell - 5 * scale) / 2;
  for (char ch : text) {
    const auto& glyph = kDigits[static_cast<std::size_t>(ch - '0')];
    for (int row = 0; row < 5; ++row)
      for (int col = 0; col < 3; ++col)
        if (glyph[static_cast<std::size_t>(row)] & (4 >> col)) fill(c, x + col * scale, y + row * scale, scale, scale, rgb);
    x += 4 * scale;
  }
}

}  // namespace

RgbImage render_confusion_matrix(const ConfusionMatrix& m, int cell) {
  if (m.classes <= 0) throw std::invalid_argument("confusion matrix image: no classes");
  const int n = static_cast<int>(m.classes), border = 1;
  RgbImage c;
  c.width = c.height = n * cell + (n + 1) * border;
  c.pixels.assign(static_cast<std::size_t>(c.width) * c.height * 3, 200);  // light grey grid lines
  for (int t = 0; t < n; ++t) {
    const std::int64_t row_total = m.true_count(t);
    for (int p = 0; p < n; ++p) {
      const std::int64_t count = m.at(t, p);
      const double fraction = row_total > 0 ? static_cast<double>(count) / static_cast<double>(row_total) : 0.0;
      // White to a dark blue (8, 48, 107), like matplotlib's "Blues".
      const auto mix = [&](int dark) { return static_cast<std::uint8_t>(std::lround(255 - (255 - dark) * fraction)); };
      const std::array<std::uint8_t, 3> shade = {mix(8), mix(48), mix(107)};
      const int x = border + p * (cell + border), y = border + t * (cell + border);
      fill(c, x, y, cell, cell, shade);
      const std::array<std::uint8_t, 3> ink = fraction > 0.5 ? std::array<std::uint8_t, 3>{255, 255, 255}
                                                             : std::array<std::uint8_t, 3>{0, 0, 0};
      draw_number(c, x, y, cell, count, ink);
    }
  }
  return c;
}

void write_confusion_matrix_png(const std::filesystem::path& file, const ConfusionMatrix& matrix, int cell_pixels) {
  write_png(file, render_confusion_matrix(matrix, cell_pixels));
}

}  // namespace histoflow::evaluation_common
