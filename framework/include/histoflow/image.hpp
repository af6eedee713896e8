#pragma once
// The one 8-bit RGB image type shared by plugins: decoded patches, slide thumbnails, heat maps, plots.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace histoflow {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // RGB interleaved, row-major, width * height * 3
  std::uint8_t* at(int x, int y) { return &pixels[(static_cast<std::size_t>(y) * width + x) * 3]; }
  const std::uint8_t* at(int x, int y) const { return &pixels[(static_cast<std::size_t>(y) * width + x) * 3]; }
};

}  // namespace histoflow
