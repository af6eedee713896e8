#pragma once
// The single registry of stage types. It lives in the framework library, so every plugin registers
// into the same instance (no static-initializer registration per shared library).
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "histoflow/contract.hpp"
#include "histoflow/stage.hpp"

namespace histoflow {

using StageFactory = std::function<std::unique_ptr<Stage>(const StageContext&)>;

class Registry {
 public:
  static Registry& instance();

  // Throws std::runtime_error when the type is already registered (naming both plugin files).
  void add(StageContract contract, StageFactory factory);

  const StageContract* find(const std::string& type) const;
  std::unique_ptr<Stage> create(const std::string& type, const StageContext& context) const;
  std::vector<std::string> types() const;  // sorted

  // The file being loaded; stages registered meanwhile are attributed to it.
  void set_loading_file(std::string file);

 private:
  struct Entry {
    StageContract contract;
    StageFactory factory;
  };
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // stable addresses for contracts
  std::string loading_file_;
};

// Convenience for plugins: register a stage class constructible from a StageContext.
template <typename StageT> void register_stage(Registry& registry, StageContract contract) {
  registry.add(std::move(contract),
               [](const StageContext& context) -> std::unique_ptr<Stage> { return std::make_unique<StageT>(context); });
}

}  // namespace histoflow
