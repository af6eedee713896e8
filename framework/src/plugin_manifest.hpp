#pragma once
// The build's list of the plugin libraries it produced (kBuiltPluginsManifest in its plugin folder): what
// lets the loader tell a current plugin from a leftover of one since removed or renamed.
#include <filesystem>
#include <optional>
#include <set>
#include <string>

namespace histoflow::detail {

// The library file names listed in `dir`'s manifest; nullopt when `dir` has none (a user's plugin folder).
std::optional<std::set<std::string>> read_built_plugins_manifest(const std::filesystem::path& dir);

}  // namespace histoflow::detail
