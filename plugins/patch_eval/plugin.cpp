#include <torch/version.h>

#include "patch_eval_stages.hpp"
// The plugin links LibTorch (matrix products, L-BFGS): its version goes into the handshake.
#define HISTOFLOW_PLUGIN_TORCH_VERSION TORCH_VERSION
#include "histoflow/plugin_api.hpp"

namespace {
void register_patch_eval(histoflow::Registry& registry) {
  histoflow::patch_eval::register_knn_eval(registry);
  histoflow::patch_eval::register_linear_probe(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("patch_eval", "Patch-level benchmark: k-NN and linear probing of frozen features", register_patch_eval)
