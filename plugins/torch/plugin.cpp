#include <torch/version.h>

#include "backbone.hpp"
#include "torch_stages.hpp"
// The LibTorch version goes into the handshake: one process can hold only one LibTorch.
#define HISTOFLOW_PLUGIN_TORCH_VERSION TORCH_VERSION
#include "histoflow/plugin_api.hpp"

namespace {
void register_torch(histoflow::Registry& registry) {
  histoflow::torchenc::register_torch_encoder(registry);
  // The built-in backbones are this plugin's to the user: `flowrun backbones` lists them under its file.
  histoflow::torchenc::catalogue_builtin_backbones(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("torch", "Encoders: batched LibTorch feature extraction (DINOv2 and timm ViTs, ResNet-50, TorchScript)", register_torch)
