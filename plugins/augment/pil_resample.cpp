#include "histoflow/augment/pil_resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace histoflow::augment {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images

// Pillow's bicubic_filter (a = -0.5), support 2.
double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis: for output sample i, input samples
// first[i] .. first[i] + count[i] - 1 with fixed-point weights weights[i * taps + k].
struct AxisCoefficients {
  int taps = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> weights;
};

AxisCoefficients axis_coefficients(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 2.0 * filter_scale;
  AxisCoefficients c;
  c.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(static_cast<std::size_t>(out_size));
  c.count.resize(static_cast<std::size_t>(out_size));
  c.weights.assign(static_cast<std::size_t>(out_size) * c.taps, 0);
  std::vector<double> k(static_cast<std::size_t>(c.taps));
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    const double inverse = 1.0 / filter_scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) total += (k[static_cast<std::size_t>(x)] = bicubic((x + xmin - center + 0.5) * inverse));
    for (int x = 0; x < xmax; ++x) {
      double w = k[static_cast<std::size_t>(x)];
      if (total != 0.0) w /= total;
      c.weights[static_cast<std::size_t>(o) * c.taps + x] =
          static_cast<std::int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.first[static_cast<std::size_t>(o)] = xmin;
    c.count[static_cast<std::size_t>(o)] = xmax;
  }
  return c;
}

std::uint8_t clip8(std::int32_t sum) { return static_cast<std::uint8_t>(std::clamp(sum >> kPrecisionBits, 0, 255)); }

}  // namespace

RgbImage resize_bicubic(const RgbImage& source, int width, int height) {
  if (width <= 0 || height <= 0 || source.width <= 0 || source.height <= 0)
    throw std::invalid_argument("resize: empty image or size (" + std::to_string(source.width) + "x" +
                                std::to_string(source.height) + " to " + std::to_string(width) + "x" + std::to_string(height) + ")");
  const bool horizontal = width != source.width, vertical = height != source.height;
  const AxisCoefficients h = axis_coefficients(source.width, width), v = axis_coefficients(source.height, height);
  // Horizontal pass over the rows the vertical pass reads, as Pillow does (its 8-bit rounding in between).
  const int row_first = v.first.front(), row_last = v.first.back() + v.count.back();
  RgbImage rows;
  const RgbImage* middle = &source;
  int middle_offset = 0;
  if (horizontal) {
    rows.width = width;
    rows.height = row_last - row_first;
    rows.pixels.resize(static_cast<std::size_t>(rows.width) * rows.height * 3);
    for (int y = 0; y < rows.height; ++y) {
      const std::uint8_t* in = source.at(0, y + row_first);
      std::uint8_t* out = rows.at(0, y);
      for (int x = 0; x < width; ++x) {
        const std::int32_t* k = &h.weights[static_cast<std::size_t>(x) * h.taps];
        const std::uint8_t* p = in + static_cast<std::size_t>(h.first[static_cast<std::size_t>(x)]) * 3;
        std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int t = 0; t < h.count[static_cast<std::size_t>(x)]; ++t, p += 3) {
          s0 += p[0] * k[t];
          s1 += p[1] * k[t];
          s2 += p[2] * k[t];
        }
        out[x * 3] = clip8(s0);
        out[x * 3 + 1] = clip8(s1);
        out[x * 3 + 2] = clip8(s2);
      }
    }
    middle = &rows;
    middle_offset = row_first;
  }
  if (!vertical) {
    if (horizontal) return rows;  // rows are then the whole height
    return source;
  }
  RgbImage out;
  out.width = middle->width;
  out.height = height;
  out.pixels.resize(static_cast<std::size_t>(out.width) * height * 3);
  const std::size_t stride = static_cast<std::size_t>(middle->width) * 3;
  for (int y = 0; y < height; ++y) {
    const std::int32_t* k = &v.weights[static_cast<std::size_t>(y) * v.taps];
    const int first = v.first[static_cast<std::size_t>(y)] - middle_offset, count = v.count[static_cast<std::size_t>(y)];
    std::uint8_t* o = out.at(0, y);
    for (std::size_t i = 0; i < stride; ++i) {
      const std::uint8_t* p = middle->pixels.data() + static_cast<std::size_t>(first) * stride + i;
      std::int32_t s = 1 << (kPrecisionBits - 1);
      for (int t = 0; t < count; ++t, p += stride) s += *p * k[t];
      o[i] = clip8(s);
    }
  }
  return out;
}

RgbImage resized_crop(const RgbImage& source, const CropBox& box, int size) {
  if (box.top < 0 || box.left < 0 || box.height <= 0 || box.width <= 0 || box.top + box.height > source.height ||
      box.left + box.width > source.width)
    throw std::invalid_argument("crop box (top " + std::to_string(box.top) + ", left " + std::to_string(box.left) + ", " +
                                std::to_string(box.width) + "x" + std::to_string(box.height) + ") is not inside the " +
                                std::to_string(source.width) + "x" + std::to_string(source.height) + " image");
  RgbImage crop;
  crop.width = box.width;
  crop.height = box.height;
  crop.pixels.resize(static_cast<std::size_t>(box.width) * box.height * 3);
  for (int y = 0; y < box.height; ++y)
    std::copy_n(source.at(box.left, box.top + y), static_cast<std::size_t>(box.width) * 3, crop.at(0, y));
  return resize_bicubic(crop, size, size);
}

void flip_horizontal(RgbImage& image) {
  for (int y = 0; y < image.height; ++y)
    for (int l = 0, r = image.width - 1; l < r; ++l, --r) std::swap_ranges(image.at(l, y), image.at(l, y) + 3, image.at(r, y));
}

void flip_vertical(RgbImage& image) {
  const std::size_t stride = static_cast<std::size_t>(image.width) * 3;
  for (int t = 0, b = image.height - 1; t < b; ++t, --b) std::swap_ranges(image.at(0, t), image.at(0, t) + stride, image.at(0, b));
}

}  // namespace histoflow::augment
