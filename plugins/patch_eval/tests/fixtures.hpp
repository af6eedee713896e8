#pragma once
// Reads the scikit-learn reference fixtures (tools/parity/make_sklearn_fixtures_patch.py).
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"

namespace patch_eval_test {

inline nlohmann::json load_fixture(const std::string& name) {
  const std::string path = std::string(HISTOFLOW_SOURCE_DIR) + "/tests/fixtures/patch_eval/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing fixture " + path + " (run tools/parity/make_sklearn_fixtures_patch.py)");
  return nlohmann::json::parse(in);
}

inline histoflow::features::FeatureMatrix matrix(const nlohmann::json& values, std::int64_t rows, std::int64_t dim) {
  histoflow::features::FeatureMatrix m;
  m.rows = rows;
  m.dim = dim;
  for (const auto& v : values) m.values.push_back(static_cast<float>(v.get<double>()));
  if (static_cast<std::int64_t>(m.values.size()) != rows * dim) throw std::runtime_error("fixture matrix has the wrong size");
  return m;
}

}  // namespace patch_eval_test
