#pragma once
// An environment for functions that take a variable lookup instead of reading getenv: tests set exactly what a user
// might have set.
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace histoflow::testing {

inline std::function<std::optional<std::string>(const std::string&)> env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    const auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace histoflow::testing
