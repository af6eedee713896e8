#include "feature_stages.hpp"
#include "histoflow/plugin_api.hpp"

namespace {
void register_features(histoflow::Registry& registry) { histoflow::features::register_feature_store(registry); }
}  // namespace

HISTOFLOW_PLUGIN("features", "Feature store: HDF5 feature files per slide or patch dataset, resumable", register_features)
