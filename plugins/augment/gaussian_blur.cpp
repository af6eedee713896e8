#include "gaussian_blur.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace histoflow::augment {
namespace {

// torchvision's _get_gaussian_kernel1d, in float32 as torch computes it.
std::vector<float> kernel_1d(int size, double sigma) {
  std::vector<float> k(static_cast<std::size_t>(size));
  const float half = static_cast<float>(size - 1) * 0.5f, s = static_cast<float>(sigma);
  float sum = 0.0f;
  for (int i = 0; i < size; ++i) {
    const float x = -half + static_cast<float>(i);
    const float r = x / s;
    sum += (k[static_cast<std::size_t>(i)] = std::exp(-0.5f * r * r));
  }
  for (auto& v : k) v /= sum;
  return k;
}

// Index into [0, n) with reflection (no edge repeat), as torch's "reflect" padding.
int reflect(int i, int n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

}  // namespace

void gaussian_blur(RgbImage& image, int kernel_size, double sigma) {
  const int radius = kernel_size / 2;
  if (kernel_size <= 0 || kernel_size % 2 == 0) throw std::invalid_argument("blur kernel size " + std::to_string(kernel_size) + " is not odd and positive");
  if (!(sigma > 0)) throw std::invalid_argument("blur sigma " + std::to_string(sigma) + " is not positive");
  if (radius >= image.width || radius >= image.height)
    throw std::invalid_argument("a " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                                " image is too small for reflect padding by " + std::to_string(radius));
  const std::vector<float> k = kernel_1d(kernel_size, sigma);
  const int w = image.width, h = image.height;
  // Horizontal pass into float rows, then the vertical pass; channels interleaved.
  std::vector<float> rows(static_cast<std::size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* in = image.at(0, y);
    float* out = &rows[static_cast<std::size_t>(y) * w * 3];
    for (int x = 0; x < w; ++x) {
      float s0 = 0, s1 = 0, s2 = 0;
      for (int t = -radius; t <= radius; ++t) {
        const std::uint8_t* p = in + static_cast<std::size_t>(reflect(x + t, w)) * 3;
        const float kt = k[static_cast<std::size_t>(t + radius)];
        s0 += kt * p[0];
        s1 += kt * p[1];
        s2 += kt * p[2];
      }
      out[x * 3] = s0;
      out[x * 3 + 1] = s1;
      out[x * 3 + 2] = s2;
    }
  }
  const std::size_t stride = static_cast<std::size_t>(w) * 3;
  for (int y = 0; y < h; ++y) {
    std::uint8_t* out = image.at(0, y);
    for (std::size_t i = 0; i < stride; ++i) {
      float s = 0;
      for (int t = -radius; t <= radius; ++t) s += k[static_cast<std::size_t>(t + radius)] * rows[static_cast<std::size_t>(reflect(y + t, h)) * stride + i];
      out[i] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(s), 0.0f, 255.0f));
    }
  }
}

}  // namespace histoflow::augment
