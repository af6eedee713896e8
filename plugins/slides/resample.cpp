#include "histoflow/slides/resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace histoflow::slides {
namespace {

struct Tap {
  int first = 0;              // first source index
  std::vector<float> weights; // for first, first + 1, ...
};

// Weights that map `in` samples to `out` samples along one axis.
std::vector<Tap> axis_taps(int in, int out) {
  std::vector<Tap> taps(static_cast<std::size_t>(out));
  const double scale = static_cast<double>(in) / out;
  for (int o = 0; o < out; ++o) {
    Tap& tap = taps[static_cast<std::size_t>(o)];
    if (scale >= 1.0) {
      // Shrinking: average the source interval [o*scale, (o+1)*scale) weighted by coverage.
      const double begin = o * scale, end = (o + 1) * scale;
      tap.first = static_cast<int>(std::floor(begin));
      const int last = std::min(in - 1, static_cast<int>(std::ceil(end)) - 1);
      for (int i = tap.first; i <= last; ++i) {
        const double covered = std::min<double>(end, i + 1) - std::max<double>(begin, i);
        tap.weights.push_back(static_cast<float>(covered / scale));
      }
    } else {
      // Enlarging: bilinear between the two nearest source centres (pixel centres aligned).
      const double centre = std::clamp((o + 0.5) * scale - 0.5, 0.0, static_cast<double>(in - 1));
      tap.first = std::min(static_cast<int>(centre), std::max(0, in - 2));
      const double t = centre - tap.first;
      tap.weights = {static_cast<float>(1 - t)};
      if (in > 1) tap.weights.push_back(static_cast<float>(t));
    }
  }
  return taps;
}

}  // namespace

void resize_rgb(const std::uint8_t* source, int sw, int sh, std::uint8_t* target, int tw, int th) {
  if (sw == tw && sh == th) {
    std::memcpy(target, source, static_cast<std::size_t>(sw) * sh * 3);
    return;
  }
  const auto xs = axis_taps(sw, tw), ys = axis_taps(sh, th);
  // Horizontal pass into floats, then vertical pass with rounding.
  std::vector<float> rows(static_cast<std::size_t>(sh) * tw * 3);
  for (int y = 0; y < sh; ++y) {
    const std::uint8_t* row = source + static_cast<std::size_t>(y) * sw * 3;
    float* out = &rows[static_cast<std::size_t>(y) * tw * 3];
    for (int x = 0; x < tw; ++x) {
      const Tap& tap = xs[static_cast<std::size_t>(x)];
      float acc[3] = {0, 0, 0};
      for (std::size_t k = 0; k < tap.weights.size(); ++k) {
        const std::uint8_t* p = row + static_cast<std::size_t>(tap.first + static_cast<int>(k)) * 3;
        for (int c = 0; c < 3; ++c) acc[c] += tap.weights[k] * p[c];
      }
      for (int c = 0; c < 3; ++c) out[x * 3 + c] = acc[c];
    }
  }
  for (int y = 0; y < th; ++y) {
    const Tap& tap = ys[static_cast<std::size_t>(y)];
    std::uint8_t* out = target + static_cast<std::size_t>(y) * tw * 3;
    for (int i = 0; i < tw * 3; ++i) {
      float acc = 0;
      for (std::size_t k = 0; k < tap.weights.size(); ++k)
        acc += tap.weights[k] * rows[static_cast<std::size_t>(tap.first + static_cast<int>(k)) * tw * 3 + i];
      out[i] = static_cast<std::uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
    }
  }
}

RgbImage resize_rgb(const RgbImage& source, int width, int height) {
  RgbImage out{width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3)};
  resize_rgb(source.pixels.data(), source.width, source.height, out.pixels.data(), width, height);
  return out;
}

}  // namespace histoflow::slides
