#pragma once
// Patient-level stratified k-fold cross-validation: every patient lands in exactly one test fold, classes
// are dealt evenly over the folds, and the inner validation split (early stopping, model selection) is
// drawn from the training patients of each fold, also by patient and stratified. Deterministic for a seed,
// independent of the standard library (own index draws on mt19937_64).
#include <cstdint>
#include <string>
#include <vector>

namespace histoflow::mil {

// `patient_labels[p]` is patient p's class. Returns the test fold of each patient, in [0, folds).
// Throws std::invalid_argument, naming the class, when a class has fewer patients than folds (a test fold
// would then miss it and its AUROC be undefined).
std::vector<int> assign_patient_folds(const std::vector<std::int64_t>& patient_labels, int folds, std::uint64_t seed);

// Of the `candidates` (patient indices), which go to validation: round(fraction * n_c) per class, at least
// one of a class with two or more patients when fraction > 0. Returns a flag per candidate.
std::vector<bool> validation_split(const std::vector<std::size_t>& candidates, const std::vector<std::int64_t>& patient_labels,
                                   double fraction, std::uint64_t seed);

// Fisher-Yates with mt19937_64 and modulo draws: the same permutation on every platform.
void deterministic_shuffle(std::vector<std::size_t>& items, std::uint64_t seed);

}  // namespace histoflow::mil
