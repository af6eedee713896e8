#pragma once
// Plain 8-bit images used by the slide stages: interleaved RGB and single-channel masks.
#include <cstdint>
#include <vector>

namespace histoflow::slides {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // RGB interleaved, row-major
  std::uint8_t* at(int x, int y) { return &pixels[(static_cast<std::size_t>(y) * width + x) * 3]; }
  const std::uint8_t* at(int x, int y) const { return &pixels[(static_cast<std::size_t>(y) * width + x) * 3]; }
};

struct Mask {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> data;  // 0 or 1, row-major
  std::uint8_t& at(int x, int y) { return data[static_cast<std::size_t>(y) * width + x]; }
  std::uint8_t at(int x, int y) const { return data[static_cast<std::size_t>(y) * width + x]; }
};

}  // namespace histoflow::slides
