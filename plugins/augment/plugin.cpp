// The augment plugin: training-time augmentations (DINOv2's multi-crop) and the ssl_crops kind they produce.
#include "augment_stages.hpp"
#include "histoflow/augment/crops_kind.hpp"
#include "histoflow/plugin_api.hpp"

namespace {
void register_augment(histoflow::Registry& registry) {
  registry.add_kind(histoflow::augment::crops_kind());
  histoflow::augment::register_multi_crop(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("augment", "Training augmentations: DINOv2's multi-crop (Pillow/torchvision-exact operations)", register_augment)
