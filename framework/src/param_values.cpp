// Parameter values: typed access for stages, TOML spelling, and the contract builder helpers.
#include <charconv>
#include <iomanip>
#include <sstream>

#include "histoflow/contract.hpp"
#include "histoflow/params.hpp"
#include "histoflow/value.hpp"

namespace histoflow {

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::Int: return "integer";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "boolean";
    case ParamType::String: return "string";
    case ParamType::Path: return "path";
    case ParamType::StringList: return "list of strings";
    case ParamType::FloatList: return "list of numbers";
  }
  return "?";
}

namespace {
std::string quoted(const std::string& text) {
  std::ostringstream out;
  out << '"';
  for (char c : text) {
    if (c == '"' || c == '\\') out << '\\' << c;
    else if (c == '\n') out << "\\n";
    else out << c;
  }
  out << '"';
  return out.str();
}
}  // namespace

std::string value_to_string(const Value& value) {
  struct Visitor {
    std::string operator()(std::monostate) const { return "(unset)"; }
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      char buffer[64];
      // Shortest text that reads back as the same double: 0.1, not 0.10000000000000001.
      const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
      std::string text(buffer, result.ptr);
      if (text.find_first_of(".eEn") == std::string::npos) text += ".0";  // keep it a TOML float
      return text;
    }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return quoted(v); }
    std::string operator()(const std::vector<std::string>& v) const {
      std::string text = "[";
      for (std::size_t i = 0; i < v.size(); ++i) text += (i ? ", " : "") + quoted(v[i]);
      return text + "]";
    }
    std::string operator()(const std::vector<double>& v) const {
      std::string text = "[";
      for (std::size_t i = 0; i < v.size(); ++i) text += (i ? ", " : "") + (*this)(v[i]);
      return text + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

const Value& Params::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::out_of_range("stage parameter '" + name + "' is not declared in its contract");
  return it->second;
}

bool Params::has(const std::string& name) const {
  auto it = values_.find(name);
  return it != values_.end() && !std::holds_alternative<std::monostate>(it->second);
}

namespace {
template <typename T> const T& get_as(const Value& value, const std::string& name, const char* wanted) {
  if (const T* v = std::get_if<T>(&value)) return *v;
  throw std::invalid_argument("stage parameter '" + name + "' is not a " + wanted + " (or is unset)");
}
}  // namespace

std::int64_t Params::get_int(const std::string& name) const { return get_as<std::int64_t>(at(name), name, "integer"); }
double Params::get_float(const std::string& name) const {
  const Value& value = at(name);
  if (const auto* i = std::get_if<std::int64_t>(&value)) return static_cast<double>(*i);
  return get_as<double>(value, name, "float");
}
bool Params::get_bool(const std::string& name) const { return get_as<bool>(at(name), name, "boolean"); }
const std::string& Params::get_string(const std::string& name) const {
  return get_as<std::string>(at(name), name, "string");
}
const std::vector<std::string>& Params::get_list(const std::string& name) const {
  return get_as<std::vector<std::string>>(at(name), name, "list of strings");
}
const std::vector<double>& Params::get_float_list(const std::string& name) const {
  return get_as<std::vector<double>>(at(name), name, "list of numbers");
}

std::string param_range_text(const ParamSpec& spec) {
  const auto number = [&](double v) {
    if (spec.type == ParamType::Int) return std::to_string(static_cast<long long>(v));
    char buffer[64];
    return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, v).ptr);
  };
  if (spec.min && spec.max) return "[" + number(*spec.min) + ", " + number(*spec.max) + "]";
  if (spec.min) return ">= " + number(*spec.min);
  if (spec.max) return "<= " + number(*spec.max);
  return "";
}

const ParamSpec* StageContract::find_param(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

const PortSpec* StageContract::find_output(const std::string& name) const {
  for (const auto& p : outputs)
    if (p.name == name) return &p;
  return nullptr;
}

ParamSpec param_int(std::string name, std::int64_t def, std::string doc, std::optional<double> min,
                    std::optional<double> max) {
  return ParamSpec{std::move(name), ParamType::Int, std::move(doc), false, def, min, max, {}, {}, true};
}
ParamSpec param_float(std::string name, double def, std::string doc, std::optional<double> min,
                      std::optional<double> max) {
  return ParamSpec{std::move(name), ParamType::Float, std::move(doc), false, def, min, max, {}, {}, true};
}
ParamSpec param_bool(std::string name, bool def, std::string doc) {
  return ParamSpec{std::move(name), ParamType::Bool, std::move(doc), false, def, {}, {}, {}, {}, true};
}
ParamSpec param_string(std::string name, std::string def, std::string doc, std::vector<std::string> choices) {
  return ParamSpec{std::move(name), ParamType::String, std::move(doc), false, std::move(def), {}, {}, std::move(choices), {}, true};
}
ParamSpec param_required(std::string name, ParamType type, std::string doc) {
  return ParamSpec{std::move(name), type, std::move(doc), true, std::monostate{}, {}, {}, {}, {}, true};
}
ParamSpec param_path(std::string name, std::string doc) {
  return ParamSpec{std::move(name), ParamType::Path, std::move(doc), false, std::monostate{}, {}, {}, {}, {}, true};
}
ParamSpec param_string_list(std::string name, std::vector<std::string> def, std::string doc) {
  return ParamSpec{std::move(name), ParamType::StringList, std::move(doc), false, std::move(def), {}, {}, {}, {}, true};
}
ParamSpec param_float_list(std::string name, std::vector<double> def, std::string doc) {
  return ParamSpec{std::move(name), ParamType::FloatList, std::move(doc), false, std::move(def), {}, {}, {}, {}, true};
}
ParamSpec not_affecting_output(ParamSpec spec) {
  spec.affects_output = false;
  return spec;
}

}  // namespace histoflow
