#pragma once
// The feature-file readers themselves, running libhdf5 in the calling process. libhdf5 1.10 is not memory-safe on
// a damaged or hostile file (docs/limits.md, "HDF5"), so histoflow's own code calls the public readers of
// feature_file.hpp, which run these in a reader process; these are for that process and for the fuzzer, which
// needs libhdf5 and the readers in its own address space to see their coverage.
#include "histoflow/features/feature_file.hpp"

namespace histoflow::features::in_process {

SlideFeatures read_slide_features(const std::filesystem::path& file, bool verify, bool require_coords);
SlideFeatures read_coordinates(const std::filesystem::path& file);
PatchFeatures read_patch_features(const std::filesystem::path& file, bool verify, bool complete);
FeatureFileShape read_feature_shape(const std::filesystem::path& file);
AttributeMap read_feature_attributes(const std::filesystem::path& file);

}  // namespace histoflow::features::in_process
