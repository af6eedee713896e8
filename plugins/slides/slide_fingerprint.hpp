#pragma once
// What a slide file is, cheaply: the SHA-256 of its size and its first and last MiB. Reading the whole
// gigabyte file would cost as much as tiling it; a changed scan changes its header, tiles or directory
// (which TIFF-based formats keep at either end), so cached results keyed by this follow the file.
#include <filesystem>
#include <string>

namespace histoflow::slides {

std::string slide_fingerprint(const std::filesystem::path& file);  // throws naming the file when unreadable

}  // namespace histoflow::slides
