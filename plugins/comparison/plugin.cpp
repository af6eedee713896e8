#include "histoflow/evaluation_common/evaluation_kind.hpp"
#include "histoflow/plugin_api.hpp"
#include "histoflow/registry.hpp"

namespace histoflow::comparison {
void register_comparison_table(Registry& registry);
}

namespace {
// The table reads evaluations, so it declares their kind (the writers include the same module).
void register_comparison(histoflow::Registry& registry) {
  registry.add_kind(histoflow::evaluation_common::evaluation_kind());
  histoflow::comparison::register_comparison_table(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("comparison", "The benchmark's comparison table: evaluation results of every encoder in one table",
                 register_comparison)
