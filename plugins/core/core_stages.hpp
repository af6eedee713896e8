#pragma once
// The core plugin: generic stages every histoflow build has. Each registers its own contract.
#include "histoflow/kind.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::core {

// The framework declares the kinds these stages speak (histoflow/kind.hpp): tiles and feature rows.
inline constexpr const char* kTileKind = kinds::kTile;
inline constexpr const char* kFeaturesKind = kinds::kFeatures;

void register_synthetic_tiles(Registry& registry);
void register_tissue_filter(Registry& registry);
void register_color_stats(Registry& registry);
void register_csv_writer(Registry& registry);
void register_item_log(Registry& registry);
void register_null_sink(Registry& registry);

// Fraction of pixels in an RGB uint8 tile that are not background (not near-white, not near-black).
double tissue_fraction(const Tensor& tile);

}  // namespace histoflow::core
