#pragma once
// Image files (PNG, JPEG, TIFF, ...) through libvips: decoded to 8-bit RGB, alpha flattened onto white.
#include <filesystem>

#include "image.hpp"

namespace histoflow::slides {

void ensure_vips();  // initialises libvips once per process
RgbImage decode_rgb(const std::filesystem::path& file);  // throws with the file and libvips' reason
// Writes an 8-bit image (1 or 3 bands) as PNG, atomically.
void write_png(const std::filesystem::path& file, const std::uint8_t* pixels, int width, int height, int bands);

}  // namespace histoflow::slides
