#include "histoflow/patch_eval/linear_probe_sweep.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>

#include "histoflow/evaluation_common/classification_metrics.hpp"
#include "patch_dataset.hpp"

namespace histoflow::patch_eval {

LinearProbeResult run_linear_probe(const PatchFeatures& train, const PatchFeatures& test, const SweepOptions& options) {
  if (options.lambdas.empty()) throw std::invalid_argument("linear probe: no lambda given");
  for (double l : options.lambdas)
    if (!(l >= 0)) throw std::invalid_argument("linear probe: lambdas must be >= 0, got " + std::to_string(l));
  const auto classes = static_cast<std::int64_t>(train.class_names.size());
  LinearProbeResult result;
  result.chosen_lambda = options.lambdas.front();
  const std::size_t fits = options.lambdas.size() > 1 ? options.lambdas.size() + 1 : 1;
  const auto starting = [&](std::size_t fit, double lambda) {
    if (options.on_fit) options.on_fit(fit, fits, lambda);
  };
  if (options.lambdas.size() > 1) {
    const Split split = stratified_split(train.labels, train.class_names, options.validation_fraction, options.seed);
    const PatchFeatures fit_part = select_rows(train, split.first);
    const PatchFeatures validation = select_rows(train, split.second);
    std::vector<double> lambdas = options.lambdas;
    std::sort(lambdas.begin(), lambdas.end(), std::greater<>());
    LogisticModel previous;
    double best = -1;
    for (double lambda : lambdas) {
      starting(result.sweep.size(), lambda);
      // Warm start: the standardisation is the same for every lambda, so the previous weights fit.
      previous = fit_logistic_regression(fit_part.features, fit_part.labels, classes, lambda, options.fit,
                                         result.sweep.empty() ? nullptr : &previous);
      const double score =
          evaluation_common::classification_metrics(validation.labels, predict(previous, validation.features), classes).balanced_accuracy;
      result.sweep.push_back({lambda, score, previous.evaluations});
      if (score > best) {  // strictly better: on ties the larger (earlier) lambda stays
        best = score;
        result.chosen_lambda = lambda;
      }
    }
  }
  starting(fits - 1, result.chosen_lambda);
  result.model = fit_logistic_regression(train.features, train.labels, classes, result.chosen_lambda, options.fit);
  result.test_predictions = predict(result.model, test.features);
  return result;
}

}  // namespace histoflow::patch_eval
