#pragma once
// The single registry of stage types, and of the catalogue entries plugins add (backbones, ...). It lives in
// the framework library, so every plugin registers into the same instance (no static-initializer
// registration per shared library).
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "histoflow/contract.hpp"
#include "histoflow/kind.hpp"
#include "histoflow/stage.hpp"

namespace histoflow {

using StageFactory = std::function<std::unique_ptr<Stage>(const StageContext&)>;

// Something a plugin adds that is not a stage type, e.g. a backbone of the torch encoder: the framework does
// not know its C++ type (no LibTorch here), only how to list and describe it, and which file registered it.
struct CatalogueEntry {
  std::string category;  // singular, e.g. "backbone"
  std::string name;
  std::string summary;   // one line
  std::string details;   // longer text, may span lines
  std::vector<std::pair<std::string, std::string>> fields;  // in display order, e.g. {"width", "384"}
  std::string plugin_file;  // set by the registry: the plugin being loaded, "" outside a plugin load

  const std::string* field(const std::string& key) const;  // null when absent
};

class Registry {
 public:
  static Registry& instance();

  // Throws std::runtime_error when the type is already registered (naming both plugin files).
  void add(StageContract contract, StageFactory factory);

  const StageContract* find(const std::string& type) const;
  std::unique_ptr<Stage> create(const std::string& type, const StageContext& context) const;
  std::vector<std::string> types() const;  // sorted

  // Throws std::runtime_error when (category, name) is already registered (naming both plugin files).
  void add_entry(CatalogueEntry entry);
  std::optional<CatalogueEntry> find_entry(const std::string& category, const std::string& name) const;
  std::vector<CatalogueEntry> entries(const std::string& category = "") const;  // sorted by category, then name

  // Packet kinds, declared by the plugin that owns each (the framework declares tile and features). Throws
  // std::runtime_error when a name is declared twice (naming both owners) or a declaration is malformed.
  void add_kind(PacketKind kind);
  const PacketKind* find_kind(const std::string& name) const;  // null when no loaded plugin declares it
  std::vector<std::string> kind_names() const;                 // sorted

  // The file being loaded; stages, kinds and entries registered meanwhile are attributed to it.
  void set_loading_file(std::string file);
  std::string loading_file() const;

 private:
  struct Entry {
    StageContract contract;
    StageFactory factory;
  };
  Registry();
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<PacketKind>> kinds_;  // stable addresses
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // stable addresses for contracts
  std::map<std::pair<std::string, std::string>, CatalogueEntry> catalogue_;  // by (category, name)
  std::string loading_file_;
};

// Convenience for plugins: register a stage class constructible from a StageContext.
template <typename StageT> void register_stage(Registry& registry, StageContract contract) {
  registry.add(std::move(contract),
               [](const StageContext& context) -> std::unique_ptr<Stage> { return std::make_unique<StageT>(context); });
}

}  // namespace histoflow
