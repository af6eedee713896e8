#include "plugin_manifest.hpp"

#include <fstream>

#include "histoflow/plugins.hpp"

namespace histoflow::detail {

std::optional<std::set<std::string>> read_built_plugins_manifest(const std::filesystem::path& dir) {
  std::ifstream in(dir / kBuiltPluginsManifest);
  if (!in) return std::nullopt;
  std::set<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && line.front() != '#') names.insert(line);  // '#': the header comment
  }
  return names;
}

}  // namespace histoflow::detail
