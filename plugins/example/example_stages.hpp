#pragma once
// The example plugin: a template for new plugins. Each stage file defines its class and registers its contract.
#include "histoflow/kind.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::example {

inline constexpr const char* kTileKind = kinds::kTile;  // declared by the framework: uint8 [H, W, 3] RGB

void register_brightness_contrast(Registry& registry);

}  // namespace histoflow::example
