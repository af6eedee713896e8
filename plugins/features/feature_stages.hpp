#pragma once
// The features plugin: the stores that write the HDF5 feature files the field's tools read.
#include "histoflow/registry.hpp"

namespace histoflow::features {

void register_slide_store(Registry& registry);
void register_patch_store(Registry& registry);

}  // namespace histoflow::features
