#pragma once
// Image files (PNG, JPEG, TIFF, ...) through libvips: decoded to 8-bit RGB, alpha flattened onto white.
#include <filesystem>

#include "histoflow/slides/image.hpp"

namespace histoflow::slides {

void ensure_vips();  // initialises libvips once per process
RgbImage decode_rgb(const std::filesystem::path& file);  // throws with the file and libvips' reason

}  // namespace histoflow::slides
