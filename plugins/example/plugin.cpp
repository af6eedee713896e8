// The plugin's one C entry point: HISTOFLOW_PLUGIN exports histoflow_plugin_descriptor, which the loader
// checks (ABI, C++ ABI, framework version) before it calls register_example.
#include "example_stages.hpp"
#include "histoflow/plugin_api.hpp"

namespace {
void register_example(histoflow::Registry& registry) { histoflow::example::register_brightness_contrast(registry); }
}  // namespace

HISTOFLOW_PLUGIN("example", "Example plugin: a deterministic brightness/contrast/grayscale tile transform",
                 register_example)
