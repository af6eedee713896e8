#pragma once
// The one PNG encoder: 8-bit RGB, no filtering. Compression 0 writes stored (uncompressed) deflate blocks,
// byte-for-byte reproducible and cheap for small images; 1-9 is a zlib level, for large images such as
// slide thumbnails.
#include <filesystem>
#include <string>

#include "histoflow/image.hpp"

namespace histoflow {

std::string encode_png(const RgbImage& image, int compression = 0);

// encode_png, written atomically.
void write_png(const std::filesystem::path& file, const RgbImage& image, int compression = 0);

}  // namespace histoflow
