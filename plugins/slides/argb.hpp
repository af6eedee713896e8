#pragma once
// OpenSlide's pixel format, private to the slides plugin: SlideReader hands out RGB.
#include <cstddef>
#include <cstdint>

namespace histoflow::slides {

// OpenSlide's premultiplied ARGB (native-endian uint32) composited over white into RGB.
void argb_over_white_to_rgb(const std::uint32_t* argb, std::size_t count, std::uint8_t* rgb);

}  // namespace histoflow::slides
