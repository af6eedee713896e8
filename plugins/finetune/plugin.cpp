// The finetune plugin: DINOv2 self-supervised finetuning as a graph stage (the training core is
// libhistoflow_finetune.so, shared with histoflow-ssl-train and the tests).
#include <torch/version.h>
#define HISTOFLOW_PLUGIN_TORCH_VERSION TORCH_VERSION  // the handshake refuses a plugin built for another LibTorch

#include "finetune_stages.hpp"
#include "histoflow/plugin_api.hpp"

namespace {
void register_finetune(histoflow::Registry& registry) { histoflow::finetune::register_dinov2_finetune(registry); }
}  // namespace

HISTOFLOW_PLUGIN("finetune", "DINOv2 self-supervised finetuning (dinov2_finetune) on multi_crop's crops", register_finetune)
