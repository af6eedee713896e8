#include "histoflow/plugin_api.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::mil {
void register_comparison_table(Registry& registry);
}

namespace {
void register_comparison(histoflow::Registry& registry) { histoflow::mil::register_comparison_table(registry); }
}  // namespace

HISTOFLOW_PLUGIN("comparison", "The benchmark's comparison table: evaluation results of every encoder in one table",
                 register_comparison)
