// The common contract rules: conditions a single parameter's type and range cannot express.
#include <filesystem>

#include "histoflow/contract.hpp"

namespace histoflow {
namespace {
bool is_set_text(const Value& value) {
  const auto* text = std::get_if<std::string>(&value);
  return text && !text->empty();
}
}  // namespace

ContractRule rule_exactly_one_of(std::string first, std::string second) {
  // A parameter is given when it is a non-empty text or a true flag.
  const auto given = [](const Value& value) {
    const auto* flag = std::get_if<bool>(&value);
    return is_set_text(value) || (flag && *flag);
  };
  const auto spelled = [](const RuleCheck& check, const std::string& name) {
    return std::holds_alternative<bool>(check.param(name)) ? "'" + name + " = true'" : "'" + name + "'";
  };
  return {"exactly one of '" + first + "' and '" + second + "'",
          [=](RuleCheck& check) {
            const bool has_first = given(check.param(first));
            const bool has_second = given(check.param(second));
            if (has_first && has_second)
              check.error(second, "give either " + spelled(check, first) + " or " + spelled(check, second) + ", not both");
            else if (!has_first && !has_second)
              check.error("", "needs " + spelled(check, first) + " or " + spelled(check, second));
          }};
}

ContractRule rule_file_exists(std::string path_param) {
  return {"'" + path_param + "' must exist when the graph is validated (in a later phase: or be inside the output folder)",
          [path_param](RuleCheck& check) {
            const Value& value = check.param(path_param);
            if (!is_set_text(value)) return;
            const auto& path = std::get<std::string>(value);  // Path parameters are absolute here
            std::error_code ec;
            if (!std::filesystem::exists(path, ec) && !check.written_by_earlier_phase(path))
              check.error(path_param, "'" + path_param + "' names '" + path + "', which does not exist");
          }};
}

ContractRule rule_input_required_when(std::size_t port, std::string port_name, std::string param, std::string value) {
  return {"input '" + port_name + "' must be connected when " + param + " = \"" + value + "\"",
          [=](RuleCheck& check) {
            const auto* text = std::get_if<std::string>(&check.param(param));
            if (!text || *text != value || check.input_connected(port)) return;
            check.error(param, param + " = \"" + value + "\" needs input '" + port_name +
                                   "': add it as input number " + std::to_string(port + 1) + " in 'inputs'");
          }};
}

}  // namespace histoflow
