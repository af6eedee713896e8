#pragma once
// The plugin handshake. A plugin library exports one C function returning a plain descriptor; the loader
// reads only C types from it and checks versions before any C++ type crosses the boundary.
#include <cstdint>

#include "histoflow/version.hpp"

namespace histoflow {
class Registry;  // the register function receives the framework's registry (histoflow/registry.hpp)
}

extern "C" {

struct HistoflowPluginDescriptor {
  std::uint32_t plugin_abi_version;  // HISTOFLOW_PLUGIN_ABI_VERSION at the plugin's build
  const char* cxx_abi;               // HISTOFLOW_CXX_ABI at the plugin's build
  const char* framework_version;     // HISTOFLOW_VERSION_STRING at the plugin's build
  const char* torch_version;         // LibTorch version when the plugin links it, else nullptr
  const char* name;                  // plugin name, e.g. "core"
  const char* description;
  // Called only after the versions match. Receives histoflow::Registry*.
  void (*register_stages)(void* registry);
};

}

#define HISTOFLOW_PLUGIN_ENTRY_SYMBOL "histoflow_plugin_descriptor"

#ifndef HISTOFLOW_PLUGIN_TORCH_VERSION
#define HISTOFLOW_PLUGIN_TORCH_VERSION nullptr
#endif

// Use once per plugin library:
//   HISTOFLOW_PLUGIN("core", "Generic stages", register_core_stages)
// where `void register_core_stages(histoflow::Registry&)` registers the plugin's stages.
#define HISTOFLOW_PLUGIN(plugin_name, plugin_description, register_function)                          \
  static void histoflow_register_trampoline(void* registry) {                                        \
    register_function(*static_cast<::histoflow::Registry*>(registry));                                \
  }                                                                                                  \
  extern "C" __attribute__((visibility("default"))) const HistoflowPluginDescriptor*                 \
  histoflow_plugin_descriptor() {                                                                    \
    static const HistoflowPluginDescriptor descriptor{                                               \
        HISTOFLOW_PLUGIN_ABI_VERSION, HISTOFLOW_CXX_ABI,           HISTOFLOW_VERSION_STRING,          \
        HISTOFLOW_PLUGIN_TORCH_VERSION, plugin_name, plugin_description, &histoflow_register_trampoline}; \
    return &descriptor;                                                                              \
  }
