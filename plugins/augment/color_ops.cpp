#include "color_ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace histoflow::augment {
namespace {

// Pillow's rgb2l: ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16.
std::uint8_t luma(const std::uint8_t* p) {
  return static_cast<std::uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

// Pillow's ImagingBlend(degenerate, image, alpha) for one value: float arithmetic, truncated; clipped only when
// extrapolating (alpha outside [0, 1]), as Pillow does.
std::uint8_t blend(int degenerate, int value, float alpha) {
  const float v = static_cast<float>(degenerate) + alpha * static_cast<float>(value - degenerate);
  if (alpha >= 0.0f && alpha <= 1.0f) return static_cast<std::uint8_t>(static_cast<int>(v));
  if (v <= 0.0f) return 0;
  if (v >= 255.0f) return 255;
  return static_cast<std::uint8_t>(static_cast<int>(v));
}

std::uint8_t clip8(int v) { return static_cast<std::uint8_t>(std::clamp(v, 0, 255)); }

// Pillow's rgb2hsv_row (colorsys in single precision, h and s scaled by 255 and truncated).
void rgb_to_hsv(const std::uint8_t* in, std::uint8_t* out) {
  const std::uint8_t r = in[0], g = in[1], b = in[2];
  const std::uint8_t maxc = std::max({r, g, b}), minc = std::min({r, g, b});
  if (minc == maxc) {
    out[0] = 0;
    out[1] = 0;
    out[2] = maxc;
    return;
  }
  const float cr = static_cast<float>(maxc - minc);
  const float s = cr / static_cast<float>(maxc);
  const float rc = static_cast<float>(maxc - r) / cr, gc = static_cast<float>(maxc - g) / cr, bc = static_cast<float>(maxc - b) / cr;
  float h;
  if (r == maxc) h = bc - gc;
  else if (g == maxc) h = static_cast<float>(2.0 + rc - bc);
  else h = static_cast<float>(4.0 + gc - rc);
  h = static_cast<float>(std::fmod(h / 6.0 + 1.0, 1.0));
  out[0] = clip8(static_cast<int>(h * 255.0));
  out[1] = clip8(static_cast<int>(s * 255.0));
  out[2] = maxc;
}

// Pillow's hsv2rgb.
void hsv_to_rgb(const std::uint8_t* in, std::uint8_t* out) {
  const std::uint8_t h = in[0], s = in[1], v = in[2];
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  const int i = static_cast<int>(std::floor(static_cast<float>(h) * 6.0 / 255.0));
  const float f = static_cast<float>(static_cast<float>(h) * 6.0 / 255.0 - static_cast<float>(i));
  const float fs = static_cast<float>(static_cast<float>(s) / 255.0);
  const std::uint8_t p = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs))));
  const std::uint8_t q = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * f))));
  const std::uint8_t t = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * (1.0 - f)))));
  switch (i % 6) {
    case 0: out[0] = v, out[1] = t, out[2] = p; break;
    case 1: out[0] = q, out[1] = v, out[2] = p; break;
    case 2: out[0] = p, out[1] = v, out[2] = t; break;
    case 3: out[0] = p, out[1] = q, out[2] = v; break;
    case 4: out[0] = t, out[1] = p, out[2] = v; break;
    default: out[0] = v, out[1] = p, out[2] = q; break;
  }
}

}  // namespace

void adjust_brightness(RgbImage& image, double factor) {
  const auto alpha = static_cast<float>(factor);
  for (auto& v : image.pixels) v = blend(0, v, alpha);
}

void adjust_contrast(RgbImage& image, double factor) {
  // ImageEnhance.Contrast: the degenerate image is the mean luma, int(mean + 0.5).
  std::uint64_t sum = 0;
  for (std::size_t p = 0; p < image.pixels.size(); p += 3) sum += luma(&image.pixels[p]);
  const std::size_t count = image.pixels.size() / 3;
  const int mean = count ? static_cast<int>(static_cast<double>(sum) / static_cast<double>(count) + 0.5) : 0;
  const auto alpha = static_cast<float>(factor);
  for (auto& v : image.pixels) v = blend(mean, v, alpha);
}

void adjust_saturation(RgbImage& image, double factor) {
  const auto alpha = static_cast<float>(factor);
  for (std::size_t p = 0; p < image.pixels.size(); p += 3) {
    const int grey = luma(&image.pixels[p]);
    for (int c = 0; c < 3; ++c) image.pixels[p + c] = blend(grey, image.pixels[p + c], alpha);
  }
}

void adjust_hue(RgbImage& image, double factor) {
  if (!(factor >= -0.5 && factor <= 0.5)) throw std::invalid_argument("hue factor " + std::to_string(factor) + " is not in [-0.5, 0.5]");
  // np.uint8(factor * 255): truncated toward zero, then modulo 256.
  const auto shift = static_cast<std::uint8_t>(static_cast<int>(factor * 255) & 0xff);
  std::uint8_t hsv[3];
  for (std::size_t p = 0; p < image.pixels.size(); p += 3) {
    rgb_to_hsv(&image.pixels[p], hsv);
    hsv[0] = static_cast<std::uint8_t>(hsv[0] + shift);
    hsv_to_rgb(hsv, &image.pixels[p]);
  }
}

void to_grayscale(RgbImage& image) {
  for (std::size_t p = 0; p < image.pixels.size(); p += 3) image.pixels[p] = image.pixels[p + 1] = image.pixels[p + 2] = luma(&image.pixels[p]);
}

void solarize(RgbImage& image, int threshold) {
  for (auto& v : image.pixels)
    if (v >= threshold) v = static_cast<std::uint8_t>(255 - v);
}

void adjust_color(RgbImage& image, int operation, double factor) {
  switch (operation) {
    case 0: adjust_brightness(image, factor); return;
    case 1: adjust_contrast(image, factor); return;
    case 2: adjust_saturation(image, factor); return;
    case 3: adjust_hue(image, factor); return;
    default: throw std::invalid_argument("colour operation " + std::to_string(operation) + " is not 0..3");
  }
}

}  // namespace histoflow::augment
