#pragma once
// Train/test patch datasets for the patch-level benchmark: checks that two feature files can be compared,
// and the stratified split used when there is no separate test set (and for the linear probe's validation).
#include <cstdint>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"

namespace histoflow::patch_eval {

using features::FeatureMatrix;
using features::PatchFeatures;

// Rows of the first and second part, each in increasing order.
struct Split {
  std::vector<std::int64_t> first;
  std::vector<std::int64_t> second;
};

// Per class, round(second_fraction * n) rows go to the second part (at least 1, and at least 1 stays in the
// first). Deterministic for a seed. Throws naming the class when a class has fewer than 2 rows.
Split stratified_split(const std::vector<std::int64_t>& labels, const std::vector<std::string>& class_names,
                       double second_fraction, std::uint64_t seed);

// The rows `rows` of `data` (features, labels, paths; same classes and attributes).
PatchFeatures select_rows(const PatchFeatures& data, const std::vector<std::int64_t>& rows);

// Throws std::invalid_argument naming `what` (e.g. the file) when the dataset is empty, a label is out of
// range, or a class has no rows ("empty class 'TUM'").
void check_patch_dataset(const PatchFeatures& data, const std::string& what);

// Makes `test` comparable with `train`: same width and the same class set (test labels are remapped when
// the same classes come in another order). Errors name both files and the classes only one of them has.
void align_test_to_train(const PatchFeatures& train, PatchFeatures& test, const std::string& train_name,
                         const std::string& test_name);

}  // namespace histoflow::patch_eval
