#pragma once
// The slide-level benchmark's metrics, all with scikit-learn's definitions: AUROC (binary; macro one-vs-rest
// for more classes), balanced accuracy and F1 (binary: of class 1; more classes: macro) of the argmax
// prediction. Summaries over folds (mean, sample standard deviation) and bootstrap 95% intervals.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace histoflow::mil {

using MetricValues = std::map<std::string, double>;

const std::vector<std::string>& slide_metric_names();  // auroc, balanced_accuracy, f1

// `probabilities` row-major [n, classes]. AUROC is NaN when a class is absent (undefined, not an error).
MetricValues slide_metrics(const std::vector<std::int64_t>& labels, const std::vector<double>& probabilities, int classes);

struct MetricSummary {
  MetricValues mean, sd, ci_low, ci_high;  // sd only over folds; ci only from a bootstrap
  std::vector<MetricValues> per_fold;
};

// Mean and sample standard deviation (ddof = 1) over folds, ignoring NaN values; sd is absent for one fold.
MetricSummary summarise_folds(const std::vector<MetricValues>& per_fold);

// Adds bootstrap intervals over the evaluated units (resampled with replacement; resamples where a metric
// is undefined are skipped).
void add_bootstrap_intervals(MetricSummary& summary, const std::vector<std::int64_t>& labels,
                             const std::vector<double>& probabilities, int classes, int resamples, std::uint64_t seed);

}  // namespace histoflow::mil
