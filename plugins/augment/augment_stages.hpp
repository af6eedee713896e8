#pragma once
// The augment plugin's stages.
#include "histoflow/registry.hpp"

namespace histoflow::augment {

void register_multi_crop(Registry& registry);

}  // namespace histoflow::augment
