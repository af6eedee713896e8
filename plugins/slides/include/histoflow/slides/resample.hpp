#pragma once
// Resizing RGB tiles with antialiasing: area averaging when shrinking (every source pixel contributes by
// its covered area, like OpenCV's INTER_AREA), bilinear when enlarging.
#include <cstdint>

#include "histoflow/slides/image.hpp"

namespace histoflow::slides {

void resize_rgb(const std::uint8_t* source, int source_width, int source_height, std::uint8_t* target, int target_width,
                int target_height);
RgbImage resize_rgb(const RgbImage& source, int width, int height);

}  // namespace histoflow::slides
