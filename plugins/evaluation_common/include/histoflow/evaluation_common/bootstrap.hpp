#pragma once
// Bootstrap confidence intervals: resample the evaluated units with replacement, recompute the metric,
// take percentiles (numpy's default linear interpolation). Resamples where the metric is undefined (one
// class only, for AUROC) are skipped and counted.
#include <cstdint>
#include <functional>
#include <vector>

namespace histoflow::evaluation_common {

struct ConfidenceInterval {
  double low = 0;
  double high = 0;
  int used = 0;     // resamples where the metric was defined
  int skipped = 0;  // resamples where it threw (e.g. a single class drawn)
};

// `metric` receives the indices of one resample (size n, drawn with replacement from 0..n-1). It may throw
// std::invalid_argument to mark the resample as undefined. Deterministic for a given seed.
ConfidenceInterval bootstrap_interval(std::size_t n, const std::function<double(const std::vector<std::size_t>&)>& metric,
                                      int resamples, std::uint64_t seed, double confidence = 0.95);

// np.percentile(values, q) with the default "linear" method; q in [0, 100]. Throws on an empty input.
double percentile(std::vector<double> values, double q);

}  // namespace histoflow::evaluation_common
