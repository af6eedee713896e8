#pragma once
// Loading plugin libraries: handshake first, registration second.
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace histoflow {

struct LoadedPlugin {
  std::filesystem::path file;
  std::string name;
  std::string description;
  std::string framework_version;
  std::string torch_version;  // empty when the plugin does not link LibTorch
  std::string origin;         // where its folder came from: "build", "installed", "HISTOFLOW_PLUGIN_PATH", "--plugins"
  std::vector<std::string> stage_types;
  std::vector<std::pair<std::string, std::string>> entries;  // catalogue (category, name) it registered
  std::vector<std::string> kinds;  // packet kinds it declared
};

// The build writes this file into its plugin folder, listing the plugin libraries it produces (one file name
// a line); a library in that folder the list lacks is a leftover, e.g. of a plugin since removed.
inline constexpr const char* kBuiltPluginsManifest = ".histoflow-built-plugins";

// The plugin folder of the running executable: <exe>/../plugins in a build tree (build/bin/flowrun beside
// build/plugins), else the installed one, <exe>/../lib/histoflow/plugins (P/bin/flowrun, P/lib/histoflow/plugins).
struct PluginFolder {
  std::filesystem::path path;
  std::string origin;  // "build" or "installed"
};
PluginFolder default_plugin_folder();

class PluginLoader {
 public:
  // Loads every shared library in `dir` (not recursive). Libraries without the entry point are skipped
  // with one note; a plugin that fails its handshake (versions naming both sides and the file) or its
  // registration is listed in errors() and the others still load. When `dir` holds the build's manifest
  // (kBuiltPluginsManifest), a library it does not list is still loaded, with a warning.
  // `origin` says where the folder came from (LoadedPlugin::origin, printed by `flowrun plugins`).
  void load_directory(const std::filesystem::path& dir, const std::string& origin = "");
  // Loads one library; throws std::runtime_error on a failed handshake or registration.
  void load_file(const std::filesystem::path& file, const std::string& origin = "");
  // The search path, in order: default_plugin_folder(), the folders of HISTOFLOW_PLUGIN_PATH (':'-separated),
  // then `extra_dirs` (flowrun --plugins DIR). A stage type or backbone registered twice is an error naming both files.
  void load_defaults(const std::vector<std::filesystem::path>& extra_dirs = {});

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<std::string>& notes() const { return notes_; }  // "skipped X: not a histoflow plugin"
  const std::vector<std::string>& warnings() const { return warnings_; }  // "X was not produced by the current build"
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<LoadedPlugin> plugins_;
  std::vector<std::string> notes_;
  std::vector<std::string> warnings_;
  std::vector<std::string> errors_;
  std::set<std::filesystem::path> seen_;
  std::string torch_version_;  // the first LibTorch version seen; all plugins must agree
  std::filesystem::path torch_version_file_;
};

}  // namespace histoflow
