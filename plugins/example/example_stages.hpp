#pragma once
// The example plugin: a template for new plugins. Each stage file defines its class and registers its contract.
#include "histoflow/registry.hpp"

namespace histoflow::example {

inline constexpr const char* kTileKind = "tile";  // uint8 [H, W, 3] RGB, as produced by core's sources

void register_brightness_contrast(Registry& registry);

}  // namespace histoflow::example
