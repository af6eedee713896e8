// A plugin built against another framework version (same ABI number): refused with both versions named.
#include <cstdlib>

#include "histoflow/plugin_api.hpp"

namespace {
void must_not_be_called(void*) { std::abort(); }
}  // namespace

extern "C" __attribute__((visibility("default"))) const HistoflowPluginDescriptor* histoflow_plugin_descriptor() {
  static const HistoflowPluginDescriptor descriptor{HISTOFLOW_PLUGIN_ABI_VERSION, HISTOFLOW_CXX_ABI, "7.3.0", nullptr,
                                                    "wrong_version", "test plugin for another framework version",
                                                    &must_not_be_called};
  return &descriptor;
}
