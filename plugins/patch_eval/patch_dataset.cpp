#include "patch_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>

namespace histoflow::patch_eval {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += (text.empty() ? "'" : ", '") + n + "'";
  return text;
}

}  // namespace

Split stratified_split(const std::vector<std::int64_t>& labels, const std::vector<std::string>& class_names,
                       double second_fraction, std::uint64_t seed) {
  if (!(second_fraction > 0 && second_fraction < 1))
    throw std::invalid_argument("split fraction must be in (0, 1), got " + std::to_string(second_fraction));
  std::vector<std::vector<std::int64_t>> by_class(class_names.size());
  for (std::size_t i = 0; i < labels.size(); ++i) by_class.at(static_cast<std::size_t>(labels[i])).push_back(static_cast<std::int64_t>(i));
  std::mt19937_64 rng(seed);
  Split split;
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    auto& rows = by_class[c];
    if (rows.empty()) continue;  // check_patch_dataset reports empty classes
    if (rows.size() < 2)
      throw std::invalid_argument("class '" + class_names[c] + "' has " + std::to_string(rows.size()) +
                                  " row: a stratified split needs at least 2 per class");
    // Fisher-Yates with our own index draw: std::shuffle's sequence differs between standard libraries.
    for (std::size_t i = rows.size() - 1; i > 0; --i) std::swap(rows[i], rows[rng() % (i + 1)]);
    const auto n = static_cast<std::int64_t>(rows.size());
    const std::int64_t second = std::clamp<std::int64_t>(std::llround(second_fraction * static_cast<double>(n)), 1, n - 1);
    split.second.insert(split.second.end(), rows.begin(), rows.begin() + second);
    split.first.insert(split.first.end(), rows.begin() + second, rows.end());
  }
  std::sort(split.first.begin(), split.first.end());
  std::sort(split.second.begin(), split.second.end());
  return split;
}

PatchFeatures select_rows(const PatchFeatures& data, const std::vector<std::int64_t>& rows) {
  PatchFeatures out;
  out.class_names = data.class_names;
  out.attributes = data.attributes;
  out.features.dim = data.features.dim;
  out.features.rows = static_cast<std::int64_t>(rows.size());
  out.features.values.reserve(rows.size() * static_cast<std::size_t>(data.features.dim));
  for (std::int64_t r : rows) {
    out.features.values.insert(out.features.values.end(), data.features.row(r), data.features.row(r) + data.features.dim);
    out.labels.push_back(data.labels[static_cast<std::size_t>(r)]);
    if (!data.paths.empty()) out.paths.push_back(data.paths[static_cast<std::size_t>(r)]);
  }
  return out;
}

void check_patch_dataset(const PatchFeatures& data, const std::string& what) {
  const auto& m = data.features;
  if (m.rows <= 0 || m.dim <= 0)
    throw std::invalid_argument(what + ": no features (" + std::to_string(m.rows) + " rows of width " + std::to_string(m.dim) + ")");
  if (m.values.size() != static_cast<std::size_t>(m.rows * m.dim) || data.labels.size() != static_cast<std::size_t>(m.rows))
    throw std::invalid_argument(what + ": " + std::to_string(m.rows) + " rows but " + std::to_string(data.labels.size()) +
                                " labels and " + std::to_string(m.values.size()) + " values");
  if (data.class_names.empty()) throw std::invalid_argument(what + ": no class names");
  std::vector<std::int64_t> counts(data.class_names.size(), 0);
  for (std::int64_t label : data.labels) {
    if (label < 0 || label >= static_cast<std::int64_t>(counts.size()))
      throw std::invalid_argument(what + ": label " + std::to_string(label) + " outside the " +
                                  std::to_string(counts.size()) + " classes");
    ++counts[static_cast<std::size_t>(label)];
  }
  std::vector<std::string> empty;
  for (std::size_t c = 0; c < counts.size(); ++c)
    if (counts[c] == 0) empty.push_back(data.class_names[c]);
  if (!empty.empty())
    throw std::invalid_argument(what + ": empty class " + join(empty) + " (no rows); remove it from the dataset's classes");
}

void align_test_to_train(const PatchFeatures& train, PatchFeatures& test, const std::string& train_name,
                         const std::string& test_name) {
  if (train.features.dim != test.features.dim)
    throw std::invalid_argument("features of different widths: " + train_name + " has " + std::to_string(train.features.dim) +
                                " dimensions, " + test_name + " has " + std::to_string(test.features.dim) +
                                " (were they made by the same encoder and output?)");
  std::vector<std::string> only_train, only_test;
  for (const auto& n : train.class_names)
    if (std::find(test.class_names.begin(), test.class_names.end(), n) == test.class_names.end()) only_train.push_back(n);
  for (const auto& n : test.class_names)
    if (std::find(train.class_names.begin(), train.class_names.end(), n) == train.class_names.end()) only_test.push_back(n);
  if (!only_train.empty() || !only_test.empty())
    throw std::invalid_argument("train and test have different class sets: only in train (" + train_name + "): " +
                                (only_train.empty() ? "none" : join(only_train)) + "; only in test (" + test_name +
                                "): " + (only_test.empty() ? "none" : join(only_test)));
  if (test.class_names == train.class_names) return;
  std::vector<std::int64_t> to_train(test.class_names.size());
  for (std::size_t c = 0; c < test.class_names.size(); ++c)
    to_train[c] = std::find(train.class_names.begin(), train.class_names.end(), test.class_names[c]) - train.class_names.begin();
  for (auto& label : test.labels) label = to_train.at(static_cast<std::size_t>(label));
  test.class_names = train.class_names;
}

}  // namespace histoflow::patch_eval
