#include "patient_folds.hpp"

#include <cmath>
#include <map>
#include <random>
#include <stdexcept>

namespace histoflow::mil {

void deterministic_shuffle(std::vector<std::size_t>& items, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[random() % i]);
}

std::vector<int> assign_patient_folds(const std::vector<std::int64_t>& patient_labels, int folds, std::uint64_t seed) {
  if (folds < 2) throw std::invalid_argument("cross-validation needs at least 2 folds, got " + std::to_string(folds));
  std::map<std::int64_t, std::vector<std::size_t>> by_class;
  for (std::size_t p = 0; p < patient_labels.size(); ++p) by_class[patient_labels[p]].push_back(p);
  if (by_class.size() < 2)
    throw std::invalid_argument("all " + std::to_string(patient_labels.size()) + " patients have the same label: nothing to classify");
  for (const auto& [label, patients] : by_class)
    if (static_cast<int>(patients.size()) < folds)
      throw std::invalid_argument("class '" + std::to_string(label) + "' has " + std::to_string(patients.size()) +
                                  " patient(s) for " + std::to_string(folds) +
                                  " folds: some test fold would have no patient of that class; use fewer folds");
  std::vector<int> fold(patient_labels.size(), -1);
  std::size_t next = 0;  // dealing continues across classes, so fold sizes differ by at most one
  for (auto& [label, patients] : by_class) {
    deterministic_shuffle(patients, seed * 1000003ULL + static_cast<std::uint64_t>(label));
    for (std::size_t p : patients) fold[p] = static_cast<int>(next++ % static_cast<std::size_t>(folds));
  }
  return fold;
}

std::vector<bool> validation_split(const std::vector<std::size_t>& candidates, const std::vector<std::int64_t>& patient_labels,
                                   double fraction, std::uint64_t seed) {
  std::vector<bool> validation(candidates.size(), false);
  if (fraction <= 0) return validation;
  std::map<std::int64_t, std::vector<std::size_t>> by_class;  // positions in `candidates`
  for (std::size_t i = 0; i < candidates.size(); ++i) by_class[patient_labels[candidates[i]]].push_back(i);
  for (auto& [label, positions] : by_class) {
    deterministic_shuffle(positions, seed * 7919ULL + static_cast<std::uint64_t>(label));
    auto take = static_cast<std::size_t>(std::lround(fraction * static_cast<double>(positions.size())));
    if (take == 0 && positions.size() >= 2) take = 1;
    if (take >= positions.size()) take = positions.size() - 1;  // keep one to train on
    for (std::size_t k = 0; k < take; ++k) validation[positions[k]] = true;
  }
  return validation;
}

}  // namespace histoflow::mil
