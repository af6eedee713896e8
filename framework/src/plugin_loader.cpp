// Plugin loading with Boost.DLL: read the C descriptor, check versions, then let the plugin register.
#include <boost/dll/shared_library.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "histoflow/plugin_api.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/version.hpp"
#include "plugin_manifest.hpp"

namespace histoflow {
namespace {

// Libraries stay loaded for the life of the process: registered factories and contracts point into them.
std::vector<boost::dll::shared_library>& loaded_libraries() {
  static auto* libraries = new std::vector<boost::dll::shared_library>();  // never destroyed: no unload at exit
  return *libraries;
}

bool looks_like_shared_library(const std::filesystem::path& file) {
  const std::string name = file.filename().string();
  return file.extension() == ".so" || name.find(".so.") != std::string::npos;
}

std::string text_or(const char* text, const char* fallback) { return text ? std::string(text) : std::string(fallback); }

std::string major_minor(const std::string& version) {
  const auto first = version.find('.');
  const auto second = first == std::string::npos ? std::string::npos : version.find('.', first + 1);
  return version.substr(0, second);
}

}  // namespace

void PluginLoader::load_file(const std::filesystem::path& path, const std::string& origin) {
  std::error_code ec;
  const auto file = std::filesystem::weakly_canonical(path, ec);
  if (!seen_.insert(file).second) return;

  boost::dll::shared_library library;
  try {
    library.load(boost::dll::fs::path(file.string()), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load plugin '" + file.string() + "': " + e.what());
  }
  if (!library.has(HISTOFLOW_PLUGIN_ENTRY_SYMBOL)) {
    notes_.push_back("skipped '" + file.string() + "': not a histoflow plugin (no " HISTOFLOW_PLUGIN_ENTRY_SYMBOL ")");
    return;
  }
  using EntryPoint = const HistoflowPluginDescriptor*();
  const HistoflowPluginDescriptor* descriptor = library.get<EntryPoint>(HISTOFLOW_PLUGIN_ENTRY_SYMBOL)();
  if (!descriptor) throw std::runtime_error("plugin '" + file.string() + "' returned no descriptor");

  // The handshake: only C types have been touched so far.
  if (descriptor->plugin_abi_version != static_cast<std::uint32_t>(kPluginAbiVersion))
    throw std::runtime_error("plugin '" + file.string() + "' was built for plugin ABI version " +
                             std::to_string(descriptor->plugin_abi_version) + ", but this histoflow (" + kVersion +
                             ") has plugin ABI version " + std::to_string(kPluginAbiVersion) + ": rebuild the plugin");
  const std::string cxx_abi = text_or(descriptor->cxx_abi, "(none)");
  if (cxx_abi != kCxxAbi)
    throw std::runtime_error("plugin '" + file.string() + "' was built with C++ ABI '" + cxx_abi +
                             "', but histoflow uses '" + kCxxAbi + "': rebuild the plugin with the same compiler");
  const std::string framework_version = text_or(descriptor->framework_version, "(none)");
  if (major_minor(framework_version) != major_minor(kVersion))
    throw std::runtime_error("plugin '" + file.string() + "' was built against histoflow " + framework_version +
                             ", but this is histoflow " + kVersion + ": rebuild the plugin");
  const std::string torch_version = text_or(descriptor->torch_version, "");
  if (!torch_version.empty()) {
    if (torch_version_.empty()) {
      torch_version_ = torch_version;
      torch_version_file_ = file;
    } else if (torch_version != torch_version_) {
      throw std::runtime_error("plugin '" + file.string() + "' links LibTorch " + torch_version + ", but '" +
                               torch_version_file_.string() + "' links LibTorch " + torch_version_ +
                               ": one process can hold only one LibTorch");
    }
  }
  if (!descriptor->register_stages) throw std::runtime_error("plugin '" + file.string() + "' has no register function");

  Registry& registry = Registry::instance();
  const auto before = registry.types();
  registry.set_loading_file(file.string());
  try {
    descriptor->register_stages(&registry);
  } catch (...) {
    registry.set_loading_file("");
    throw;
  }
  registry.set_loading_file("");

  LoadedPlugin plugin{file, text_or(descriptor->name, file.stem().c_str()), text_or(descriptor->description, ""),
                      framework_version, torch_version, origin, {}, {}, {}};
  for (const auto& type : registry.types())
    if (std::find(before.begin(), before.end(), type) == before.end()) plugin.stage_types.push_back(type);
  for (const auto& entry : registry.entries())
    if (entry.plugin_file == file.string()) plugin.entries.emplace_back(entry.category, entry.name);
  for (const auto& kind : registry.kind_names())
    if (registry.find_kind(kind)->owner == file.string()) plugin.kinds.push_back(kind);
  plugins_.push_back(std::move(plugin));
  loaded_libraries().push_back(std::move(library));
}

void PluginLoader::load_directory(const std::filesystem::path& dir, const std::string& origin) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    notes_.push_back("plugin folder '" + dir.string() + "' does not exist");
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_regular_file() && looks_like_shared_library(entry.path())) files.push_back(entry.path());
  std::sort(files.begin(), files.end());  // deterministic registration order
  // A removed plugin's library stays in the build folder and would go on registering its stages unnoticed.
  if (const auto built = detail::read_built_plugins_manifest(dir))
    for (const auto& file : files)
      if (!built->count(file.filename().string()))
        warnings_.push_back(file.string() + " was not produced by the current build (a removed plugin's leftover?); delete it");
  for (const auto& file : files) {
    try {
      load_file(file, origin);
    } catch (const std::exception& e) {
      errors_.push_back(e.what());
    }
  }
}

PluginFolder default_plugin_folder() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const auto prefix = exe.parent_path().parent_path();
  if (std::filesystem::is_directory(prefix / "plugins", ec)) return {prefix / "plugins", "build"};
  return {prefix / "lib" / "histoflow" / "plugins", "installed"};  // load_directory notes it when missing
}

void PluginLoader::load_defaults(const std::vector<std::filesystem::path>& extra_dirs) {
  const PluginFolder own = default_plugin_folder();
  if (!own.path.empty()) load_directory(own.path, own.origin);
  if (const char* env = std::getenv("HISTOFLOW_PLUGIN_PATH")) {
    std::stringstream paths(env);
    std::string dir;
    while (std::getline(paths, dir, ':'))
      if (!dir.empty()) load_directory(dir, "HISTOFLOW_PLUGIN_PATH");
  }
  for (const auto& dir : extra_dirs) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec)) load_directory(dir, "--plugins");
    else errors_.push_back("--plugins '" + dir.string() + "': no such folder");  // asked for by name: not a mere note
  }
}

}  // namespace histoflow
