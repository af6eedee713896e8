#pragma once
// The features plugin: the feature store (HDF5 files the field's tools read).
#include "histoflow/registry.hpp"

namespace histoflow::features {

inline constexpr const char* kFeatureFileKind = "feature_file";  // one per written file: attribute path, labels, encoder

void register_feature_store(Registry& registry);

}  // namespace histoflow::features
