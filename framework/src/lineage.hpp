#pragma once
// A stage's lineage (see Stage::set_lineage), computed the same way by the runtime and the stage harness.
#include <algorithm>
#include <string>
#include <vector>

#include "histoflow/contract.hpp"
#include "histoflow/sha256.hpp"

namespace histoflow::detail {

// `inputs`: one line per input edge ("<port> <upstream lineage>:<upstream port>"), in any order.
inline std::string stage_lineage(const std::string& type, const StageContract& contract, const std::map<std::string, Value>& params,
                                 const std::string& identity, std::vector<std::string> inputs) {
  std::string text = "type " + type + "\n";
  for (const auto& param : contract.params)
    if (param.affects_output) text += "param " + param.name + " = " + value_to_string(params.at(param.name)) + "\n";
  text += "identity " + identity + "\n";
  std::sort(inputs.begin(), inputs.end());
  for (const auto& line : inputs) text += "input " + line + "\n";
  return sha256_hex(text);
}

}  // namespace histoflow::detail
