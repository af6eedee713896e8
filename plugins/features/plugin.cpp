#include "feature_stages.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/plugin_api.hpp"

namespace {
void register_features(histoflow::Registry& registry) {
  registry.add_kind(histoflow::features::feature_file_kind());
  histoflow::features::register_slide_store(registry);
  histoflow::features::register_patch_store(registry);
  histoflow::features::register_feature_reader(registry);
  histoflow::features::register_feature_export(registry);
  histoflow::features::register_patch_feature_reader(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("features", "Feature stores: HDF5 feature files per slide (slide_store) or patch dataset (patch_store), resumable; "
                             "CLAM and TRIDENT files read (feature_reader, patch_feature_reader) and written (feature_export)",
                 register_features)
