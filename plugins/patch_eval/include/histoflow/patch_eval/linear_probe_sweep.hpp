#pragma once
// The linear-probe protocol: choose lambda by a sweep on a stratified validation split of the training set
// (highest balanced accuracy; ties go to the larger lambda), then refit on the whole training set.
// Lambdas are fitted from the largest down, each warm-started from the previous solution.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"
#include "histoflow/patch_eval/linear_probe.hpp"

namespace histoflow::patch_eval {

using features::PatchFeatures;

struct SweepOptions {
  std::vector<double> lambdas{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1};
  double validation_fraction = 0.2;
  std::uint64_t seed = 0;
  LogisticFitOptions fit;
  // Before each fit: its index and the number of fits (the sweep's lambdas, then the refit); may be empty.
  std::function<void(std::size_t fit, std::size_t fits, double lambda)> on_fit;
};

struct SweepPoint {
  double lambda = 0;
  double validation_balanced_accuracy = 0;
  std::int64_t evaluations = 0;
};

struct LinearProbeResult {
  std::vector<SweepPoint> sweep;  // in the order fitted (largest lambda first)
  double chosen_lambda = 0;
  LogisticModel model;            // refitted on the whole training set
  std::vector<std::int64_t> test_predictions;
};

// A single lambda skips the sweep (and the validation split).
LinearProbeResult run_linear_probe(const PatchFeatures& train, const PatchFeatures& test, const SweepOptions& options);

}  // namespace histoflow::patch_eval
