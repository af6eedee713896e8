// A plugin built for a future plugin ABI: the loader must refuse it before calling anything in it.
#include <cstdlib>

#include "histoflow/plugin_api.hpp"

namespace {
void must_not_be_called(void*) { std::abort(); }
}  // namespace

extern "C" __attribute__((visibility("default"))) const HistoflowPluginDescriptor* histoflow_plugin_descriptor() {
  static const HistoflowPluginDescriptor descriptor{999, HISTOFLOW_CXX_ABI, HISTOFLOW_VERSION_STRING, nullptr,
                                                    "wrong_abi", "test plugin with a wrong ABI version",
                                                    &must_not_be_called};
  return &descriptor;
}
