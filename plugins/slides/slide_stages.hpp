#pragma once
// The slides plugin: cohort manifests, whole-slide reading with OpenSlide, tissue detection and tiling,
// tile reading, and patch datasets.
#include "histoflow/registry.hpp"

namespace histoflow::slides {

// Packet kinds of this plugin.
inline constexpr const char* kSlideKind = "slide";      // one per slide: attributes path, slide_id, patient, labels
inline constexpr const char* kTileRefKind = "tile_ref"; // where to read a tile: provenance.tile + read attributes
inline constexpr const char* kTileKind = "tile";        // uint8 [size, size, 3] RGB pixels
inline constexpr const char* kGridKind = "tile_grid";   // one per slide: int64 [N, 2] level-0 coordinates

void register_slide_source(Registry& registry);
void register_tissue_tiler(Registry& registry);
void register_tile_reader(Registry& registry);
void register_patch_folder(Registry& registry);
void register_grid_writer(Registry& registry);

}  // namespace histoflow::slides
