#pragma once
// The validated parameters of one stage instance: every declared parameter has a value of its type.
#include <map>
#include <stdexcept>
#include <string>

#include "histoflow/value.hpp"

namespace histoflow {

class Params {
 public:
  Params() = default;
  explicit Params(std::map<std::string, Value> values) : values_(std::move(values)) {}

  bool has(const std::string& name) const;  // declared and set (not monostate)
  std::int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;  // String and Path
  const std::vector<std::string>& get_list(const std::string& name) const;
  const std::vector<double>& get_float_list(const std::string& name) const;
  const std::map<std::string, Value>& all() const { return values_; }

 private:
  const Value& at(const std::string& name) const;
  std::map<std::string, Value> values_;
};

}  // namespace histoflow
