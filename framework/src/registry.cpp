#include "histoflow/registry.hpp"

#include <stdexcept>

namespace histoflow {

namespace detail {
std::vector<PacketKind> framework_kinds();  // framework_kinds.cpp
}

Registry::Registry() {
  for (auto& kind : detail::framework_kinds()) add_kind(std::move(kind));
}

Registry& Registry::instance() {
  static Registry registry;
  return registry;
}

void Registry::add_kind(PacketKind kind) {
  std::lock_guard lock(mutex_);
  kind.owner = loading_file_.empty() ? std::string("framework") : loading_file_;
  if (kind.name.empty() || kind.name == kAnyKind)
    throw std::runtime_error("a packet kind cannot be named '" + kind.name + "' (declared by " + kind.owner + ")");
  if (kind.tensor && kind.tensor->rank >= 0 && !kind.tensor->shape.empty() &&
      static_cast<int>(kind.tensor->shape.size()) != kind.tensor->rank)
    throw std::runtime_error("packet kind '" + kind.name + "' declares rank " + std::to_string(kind.tensor->rank) +
                             " but a shape of " + std::to_string(kind.tensor->shape.size()) + " dimensions");
  if (auto it = kinds_.find(kind.name); it != kinds_.end())
    throw std::runtime_error("packet kind '" + kind.name + "' is declared twice: by " + it->second->owner + " and by " +
                             kind.owner);
  const std::string name = kind.name;
  kinds_.emplace(name, std::make_unique<PacketKind>(std::move(kind)));
}

const PacketKind* Registry::find_kind(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::kind_names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, kind] : kinds_) names.push_back(name);
  return names;
}

void Registry::add(StageContract contract, StageFactory factory) {
  std::lock_guard lock(mutex_);
  if (contract.type.empty()) throw std::runtime_error("a stage contract has an empty type name");
  contract.plugin_file = loading_file_;
  if (auto it = entries_.find(contract.type); it != entries_.end())
    throw std::runtime_error("stage type '" + contract.type + "' is registered twice: by '" +
                             it->second->contract.plugin_file + "' and by '" + contract.plugin_file + "'");
  // Batching is a framework facility, so its parameter is declared here, once, for every batched stage.
  if (contract.batched && !contract.find_param("batch"))
    contract.params.insert(contract.params.begin(),
                           not_affecting_output(param_int("batch", contract.default_batch,
                                     "Packets per batch; the last batch of a stream may be smaller.", 1, 65536)));
  // Keys of a stage table that the graph reads itself: a parameter of the same name could never be set.
  for (const auto& param : contract.params)
    for (const char* reserved : {"use", "input", "inputs", "after"})
      if (param.name == reserved)
        throw std::runtime_error("stage type '" + contract.type + "': parameter '" + param.name +
                                 "' has the name of a stage-table key (use, input, inputs, after)");
  for (const auto& param : contract.params)
    if (!param.required && std::holds_alternative<std::monostate>(param.default_value) &&
        param.type != ParamType::Path && param.type != ParamType::String)
      throw std::runtime_error("stage type '" + contract.type + "': optional parameter '" + param.name +
                               "' has no default");
  for (std::size_t i = 0; i + 1 < contract.inputs.size(); ++i)
    if (contract.inputs[i].optional && !contract.inputs[i + 1].optional)
      throw std::runtime_error("stage type '" + contract.type + "': optional input '" + contract.inputs[i].name +
                               "' is followed by a required one (only trailing inputs can be optional)");
  auto entry = std::make_unique<Entry>(Entry{std::move(contract), std::move(factory)});
  const std::string type = entry->contract.type;
  entries_.emplace(type, std::move(entry));
}

const StageContract* Registry::find(const std::string& type) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(type);
  return it == entries_.end() ? nullptr : &it->second->contract;
}

std::unique_ptr<Stage> Registry::create(const std::string& type, const StageContext& context) const {
  StageFactory factory;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(type);
    if (it == entries_.end()) throw std::runtime_error("unknown stage type '" + type + "'");
    factory = it->second->factory;
  }
  return factory(context);
}

std::vector<std::string> Registry::types() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, entry] : entries_) names.push_back(name);
  return names;
}

void Registry::set_loading_file(std::string file) {
  std::lock_guard lock(mutex_);
  loading_file_ = std::move(file);
}

std::string Registry::loading_file() const {
  std::lock_guard lock(mutex_);
  return loading_file_;
}

const std::string* CatalogueEntry::field(const std::string& key) const {
  for (const auto& [k, value] : fields)
    if (k == key) return &value;
  return nullptr;
}

namespace {
std::string origin(const std::string& file) { return file.empty() ? "(not a plugin load)" : "'" + file + "'"; }
}  // namespace

void Registry::add_entry(CatalogueEntry entry) {
  std::lock_guard lock(mutex_);
  if (entry.category.empty() || entry.name.empty())
    throw std::runtime_error("a catalogue entry needs a category and a name (got '" + entry.category + "', '" +
                             entry.name + "')");
  entry.plugin_file = loading_file_;
  auto key = std::make_pair(entry.category, entry.name);
  if (auto it = catalogue_.find(key); it != catalogue_.end())
    throw std::runtime_error(entry.category + " '" + entry.name + "' is registered twice: by " +
                             origin(it->second.plugin_file) + " and by " + origin(entry.plugin_file));
  catalogue_.emplace(std::move(key), std::move(entry));
}

std::optional<CatalogueEntry> Registry::find_entry(const std::string& category, const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = catalogue_.find({category, name});
  if (it == catalogue_.end()) return std::nullopt;
  return it->second;
}

std::vector<CatalogueEntry> Registry::entries(const std::string& category) const {
  std::lock_guard lock(mutex_);
  std::vector<CatalogueEntry> found;
  for (const auto& [key, entry] : catalogue_)
    if (category.empty() || key.first == category) found.push_back(entry);
  return found;
}

}  // namespace histoflow
