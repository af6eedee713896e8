#include "core_stages.hpp"
#include "histoflow/plugin_api.hpp"

namespace {
void register_core(histoflow::Registry& registry) {
  using namespace histoflow::core;
  register_synthetic_tiles(registry);
  register_tissue_filter(registry);
  register_color_stats(registry);
  register_csv_writer(registry);
  register_item_log(registry);
  register_null_sink(registry);
}
}  // namespace

HISTOFLOW_PLUGIN("core", "Generic stages: synthetic tiles, tissue filter, colour statistics, CSV, log and null sinks",
                 register_core)
