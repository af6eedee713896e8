// Converts weights to safetensors: convert_weights SOURCE TARGET.safetensors [--backbone NAME]
// With --backbone, only that backbone's tensors are written, under plain names, after a strict check. The
// backbone may come from a plugin: the plugins are loaded as flowrun loads them (its plugin folder, build/plugins
// or PREFIX/lib/histoflow/plugins, then HISTOFLOW_PLUGIN_PATH).
#include <iostream>

#include "histoflow/plugins.hpp"
#include "histoflow/torch_encoders/convert.hpp"

namespace {

// A plugin that fails to load only matters if it was the one adding the backbone: find_backbone then says
// the name is unknown, after these lines have said why.
void load_plugins() {
  static histoflow::PluginLoader loader;  // plugins stay loaded for the life of the process
  loader.load_defaults();
  for (const auto& warning : loader.warnings()) std::cerr << "convert_weights: warning: " << warning << "\n";
  for (const auto& error : loader.errors()) std::cerr << "convert_weights: warning: plugin not loaded: " << error << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--backbone")) {
    std::cerr << "usage: convert_weights SOURCE(.pth|.pt|.safetensors) TARGET.safetensors [--backbone NAME]\n"
                 "  --backbone NAME  keep that backbone's tensors only, strictly checked (built-in or from a plugin:\n"
                 "                   build/plugins and HISTOFLOW_PLUGIN_PATH are loaded; `flowrun backbones` lists them)\n";
    return 2;
  }
  try {
    const std::string backbone = argc == 5 ? argv[4] : "";
    if (!backbone.empty()) load_plugins();
    const auto report = histoflow::torch_encoders::convert_to_safetensors(argv[1], argv[2], backbone);
    std::cout << "wrote " << argv[2] << ": " << report.tensors << " tensors"
              << (report.nesting.empty() ? "" : ", unwrapped from '" + report.nesting + "'")
              << (report.prefix.empty() ? "" : ", prefix '" + report.prefix + "' stripped")
              << "; source sha256 " << report.source_sha256 << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "convert_weights: " << e.what() << "\n";
    return 1;
  }
}
