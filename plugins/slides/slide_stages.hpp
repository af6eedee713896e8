#pragma once
// The slides plugin: cohort manifests, whole-slide reading with OpenSlide, tissue detection and tiling,
// tile reading, and patch datasets.
#include "histoflow/kind.hpp"
#include "histoflow/slides/slide_kinds.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::slides {

// The kinds this plugin declares (slide, tile_ref, tile_grid) are in histoflow/slides/slide_kinds.hpp; tiles
// are the framework's.
inline constexpr const char* kTileKind = kinds::kTile;

void register_slide_source(Registry& registry);
void register_tissue_tiler(Registry& registry);
void register_tile_reader(Registry& registry);
void register_patch_folder(Registry& registry);
void register_grid_writer(Registry& registry);
void register_slide_tile_sampler(Registry& registry);
void register_stain_normalize(Registry& registry);

}  // namespace histoflow::slides
