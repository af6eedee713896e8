#pragma once
// Parameter values and their declared types.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace histoflow {

enum class ParamType : std::uint8_t { Int, Float, Bool, String, Path, StringList, FloatList };

const char* param_type_name(ParamType type);

// A parameter value as written in a graph file (after type checking). Paths are stored resolved.
using Value = std::variant<std::monostate, std::int64_t, double, bool, std::string, std::vector<std::string>, std::vector<double>>;

std::string value_to_string(const Value& value);  // TOML spelling: 3, 0.5, true, "x", ["a", "b"], [0.5, 1.0]

}  // namespace histoflow
