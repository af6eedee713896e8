#include <torch/version.h>

#include "mil_stages.hpp"
#define HISTOFLOW_PLUGIN_TORCH_VERSION TORCH_VERSION  // the handshake refuses a plugin built for another LibTorch
#include "histoflow/plugin_api.hpp"

namespace {
void register_mil(histoflow::Registry& registry) { histoflow::mil::register_mil_cv(registry); }
}  // namespace

HISTOFLOW_PLUGIN("mil", "Slide-level benchmark: MIL aggregators (LibTorch) and patient-level cross-validation (mil_cv)",
                 register_mil)
