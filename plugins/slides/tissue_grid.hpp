#pragma once
// Tissue detection and the tile grid of one slide, with the grid cache: what tissue_tiler emits tile by tile and
// slide_tile_sampler samples from. Both stages declare tiling_params() and read them here.
#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "grid_cache.hpp"
#include "histoflow/contract.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/params.hpp"
#include "tissue_mask.hpp"

namespace histoflow::slides {

// The tiling and mask parameters, with their defaults and documentation.
std::vector<ParamSpec> tiling_params();

struct SlideToTile {
  std::string id;
  std::filesystem::path path;
  std::string fingerprint;    // empty: the grid is not cached
  std::optional<double> mpp;  // from the manifest, overriding the slide's own
};

// How tile_reader reads a grid's tiles, the same for every tile of the slide: from the grid's attributes once,
// not per tile.
struct TileReading {
  std::int32_t read_level = 0;  // pyramid level read
  std::int32_t extent = 0;      // tile side in level-0 pixels
  std::map<std::string, Attribute> attributes;  // read_size, tile_size, mpp: what a tile reference carries
  TileCoord at(const CachedGrid& grid, std::int64_t tile) const {
    return TileCoord{grid.coords[static_cast<std::size_t>(2 * tile)], grid.coords[static_cast<std::size_t>(2 * tile + 1)], read_level, extent};
  }
};
TileReading tile_reading(const CachedGrid& grid);

class TissueGridder {
 public:
  TissueGridder(const Params& params, std::filesystem::path output_dir);
  // Where cached grids go: <cache>/<key>/ (the key names the tiling, e.g. the stage's lineage).
  void set_cache_key(const std::string& key) { cache_folder_ = cache_root_ / key; }
  // The slide's grid: coordinates plus the tiling attributes. From the cache when it is there (unless masks are
  // asked for and missing); cache problems are recorded in `errors` and the grid computed. Throws naming the
  // slide when it cannot be read, has no usable mpp, or has no tissue tile.
  CachedGrid grid(const SlideToTile& slide, ErrorLog& errors, const std::string& stage_id);
  std::int64_t masks_written() const { return masks_written_.load(); }

 private:
  std::filesystem::path mask_file(const std::string& id, const char* extension) const;
  CachedGrid compute_grid(const SlideToTile& slide);

  std::filesystem::path cache_root_, cache_folder_;
  bool cache_enabled_ = true;
  std::filesystem::path output_dir_;
  double mpp_, magnification_, min_tissue_, mask_mpp_, min_piece_area_;
  std::int64_t size_, stride_;
  TissueMaskOptions mask_options_;
  std::optional<double> assume_mpp_;
  bool write_masks_;
  std::atomic<std::int64_t> masks_written_{0};  // grids are computed concurrently
};

}  // namespace histoflow::slides
