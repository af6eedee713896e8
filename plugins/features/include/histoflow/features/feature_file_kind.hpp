#pragma once
// The "feature_file" packet kind: one feature file written (or found complete) by a store: a slide's file
// for the slide-level benchmark, or a patch dataset's file for the patch-level one. Declared here, with the
// files it announces; registered by the features plugin; read by mil_cv, knn_eval and linear_probe.
#include "histoflow/kind.hpp"

namespace histoflow::features {

inline constexpr const char* kFeatureFileKind = "feature_file";

PacketKind feature_file_kind();

}  // namespace histoflow::features
