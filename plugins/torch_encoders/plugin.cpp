#include <torch/version.h>

#include "histoflow/torch_encoders/backbone.hpp"
#include "torch_stages.hpp"
// The LibTorch version goes into the handshake: one process can hold only one LibTorch.
#define HISTOFLOW_PLUGIN_TORCH_VERSION TORCH_VERSION
#include "histoflow/plugin_api.hpp"

namespace {
void register_torch_encoders(histoflow::Registry& registry) {
  histoflow::torch_encoders::register_torch_encoder(registry);
  // The built-in backbones are this plugin's to the user: `flowrun backbones` lists them under its file.
  histoflow::torch_encoders::catalogue_builtin_backbones(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("torch_encoders", "Encoders: batched LibTorch feature extraction (DINOv2 and timm ViTs, ResNet-50, TorchScript)", register_torch_encoders)
