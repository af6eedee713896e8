#include "confusion_matrix_image.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"

namespace histoflow::eval {
namespace {

// 3x5 digit glyphs, one row per entry, bit 2 = left column.
constexpr std::array<std::array<std::uint8_t, 5>, 10> kDigits = {{
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
}};

void fill(RgbCanvas& c, int x0, int y0, int w, int h, std::array<std::uint8_t, 3> rgb) {
  for (int y = std::max(0, y0); y < std::min(c.height, y0 + h); ++y)
    for (int x = std::max(0, x0); x < std::min(c.width, x0 + w); ++x)
      std::copy(rgb.begin(), rgb.end(), c.pixels.begin() + (static_cast<std::ptrdiff_t>(y) * c.width + x) * 3);
}

void draw_number(RgbCanvas& c, int cx, int cy, int cell, std::int64_t value, std::array<std::uint8_t, 3> rgb) {
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

std::uint32_t crc32(const std::string& bytes, std::size_t from) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t n = 0; n < 256; ++n) {
      std::uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = from; i < bytes.size(); ++i) c = table[(c ^ static_cast<std::uint8_t>(bytes[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
}

void put_chunk(std::string& png, const char* type, const std::string& data) {
  put_u32(png, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = png.size();
  png += type;
  png += data;
  put_u32(png, crc32(png, start));
}

// A zlib stream of stored (uncompressed) deflate blocks: no dependency, and these images are small.
std::string zlib_stored(const std::string& raw) {
  std::string z = "\x78\x01";
  std::size_t pos = 0;
  do {
    const std::size_t len = std::min<std::size_t>(65535, raw.size() - pos);
    const bool last = pos + len == raw.size();
    z += static_cast<char>(last ? 1 : 0);
    z += static_cast<char>(len & 0xFF);
    z += static_cast<char>(len >> 8);
    z += static_cast<char>(~len & 0xFF);
    z += static_cast<char>((~len >> 8) & 0xFF);
    z.append(raw, pos, len);
    pos += len;
  } while (pos < raw.size());
  std::uint32_t a = 1, b = 0;  // Adler-32
  for (unsigned char ch : raw) {
    a = (a + ch) % 65521;
    b = (b + a) % 65521;
  }
  put_u32(z, (b << 16) | a);
  return z;
}

}  // namespace

RgbCanvas render_confusion_matrix(const ConfusionMatrix& m, int cell) {
  if (m.classes <= 0) throw std::invalid_argument("confusion matrix image: no classes");
  const int n = static_cast<int>(m.classes), border = 1;
  RgbCanvas c;
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

std::string encode_png(const RgbCanvas& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3)
    throw std::invalid_argument("PNG: pixel buffer does not match " + std::to_string(image.width) + " x " +
                                std::to_string(image.height) + " RGB");
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string header;
  put_u32(header, static_cast<std::uint32_t>(image.width));
  put_u32(header, static_cast<std::uint32_t>(image.height));
  header += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, RGB, deflate, no filter, no interlace
  put_chunk(png, "IHDR", header);
  std::string raw;
  const std::size_t stride = static_cast<std::size_t>(image.width) * 3;
  raw.reserve((stride + 1) * image.height);
  for (int y = 0; y < image.height; ++y) {
    raw += '\0';  // filter type: none
    raw.append(reinterpret_cast<const char*>(image.pixels.data()) + y * stride, stride);
  }
  put_chunk(png, "IDAT", zlib_stored(raw));
  put_chunk(png, "IEND", "");
  return png;
}

void write_confusion_matrix_png(const std::filesystem::path& file, const ConfusionMatrix& matrix, int cell_pixels) {
  write_file_atomically(file, encode_png(render_confusion_matrix(matrix, cell_pixels)));
}

}  // namespace histoflow::eval
