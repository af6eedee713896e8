#pragma once
// The features plugin: the stores that write the HDF5 feature files the field's tools read, and the stages
// that read other tools' feature files (feature_reader) and write theirs (feature_export).
#include "histoflow/registry.hpp"

namespace histoflow::features {

void register_slide_store(Registry& registry);
void register_patch_store(Registry& registry);
void register_feature_reader(Registry& registry);
void register_feature_export(Registry& registry);
void register_patch_feature_reader(Registry& registry);

}  // namespace histoflow::features
