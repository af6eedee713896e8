#pragma once
// Cached tissue detection: a slide's tile grid (coordinates and tiling attributes) as a sealed file, so that
// a rerun, or a new encoder on the same tiling, skips the mask.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "histoflow/packet.hpp"

namespace histoflow::slides {

struct CachedGrid {
  std::vector<std::int64_t> coords;  // N * 2, level-0 x, y
  std::map<std::string, Attribute> attributes;
};

void write_grid_cache(const std::filesystem::path& file, const CachedGrid& grid, const std::string& identity);
// nullopt when the file is absent; throws naming the file when it exists but fails verification or parsing.
std::optional<CachedGrid> read_grid_cache(const std::filesystem::path& file);

}  // namespace histoflow::slides
