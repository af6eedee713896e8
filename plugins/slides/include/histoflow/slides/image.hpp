#pragma once
// Plain 8-bit images used by the slide stages: interleaved RGB (histoflow::RgbImage) and single-channel masks.
#include <cstdint>
#include <vector>

#include "histoflow/image.hpp"

namespace histoflow::slides {

using histoflow::RgbImage;  // the framework's one RGB image type, under the name slide code has always used

struct Mask {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> data;  // 0 or 1, row-major
  std::uint8_t& at(int x, int y) { return data[static_cast<std::size_t>(y) * width + x]; }
  std::uint8_t at(int x, int y) const { return data[static_cast<std::size_t>(y) * width + x]; }
};

}  // namespace histoflow::slides
