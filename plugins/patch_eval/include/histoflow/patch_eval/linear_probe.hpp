#pragma once
// Linear probing: multinomial logistic regression on standardised features, fitted full batch with L-BFGS.
//
// Objective (per fit): mean cross-entropy over the n training rows + lambda / 2 * ||W||^2 (the bias is not
// penalised). scikit-learn's LogisticRegression minimises C * sum(cross-entropy) + 1/2 ||W||^2, the same
// optimum for
//     lambda = 1 / (C * n)      (C = 1 / (lambda * n)).
// Standardisation uses the fit rows' mean and population standard deviation (a constant feature keeps scale
// 1), as sklearn's StandardScaler. The header is free of LibTorch; the implementation uses it.
#include <cstdint>
#include <vector>

#include "histoflow/features/feature_file.hpp"

namespace histoflow::patch_eval {

struct LogisticFitOptions {
  std::int64_t max_iterations = 500;
  double gradient_tolerance = 1e-6;  // stop when max |gradient| falls below it
  int threads = 0;                   // LibTorch intra-op threads; 0: leave the current setting
};

struct LogisticModel {
  std::int64_t dim = 0;
  std::int64_t classes = 0;
  double lambda = 0;
  std::vector<float> mean, scale;  // dim: standardisation of the inputs
  std::vector<float> weights;      // classes * dim (on standardised inputs)
  std::vector<float> bias;         // classes
  std::int64_t evaluations = 0;    // objective evaluations L-BFGS used
  double loss = 0;                 // final objective
};

// `warm_start` (optional) supplies initial weights/bias of the same shape (the sweep passes its previous fit).
LogisticModel fit_logistic_regression(const features::FeatureMatrix& x, const std::vector<std::int64_t>& labels,
                                      std::int64_t classes, double lambda, const LogisticFitOptions& options,
                                      const LogisticModel* warm_start = nullptr);

std::vector<std::int64_t> predict(const LogisticModel& model, const features::FeatureMatrix& x);

}  // namespace histoflow::patch_eval
