#include "slide_metrics.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "histoflow/evaluation_common/auroc.hpp"
#include "histoflow/evaluation_common/bootstrap.hpp"
#include "histoflow/evaluation_common/classification_metrics.hpp"

namespace histoflow::mil {
namespace {

std::vector<std::int64_t> argmax_predictions(const std::vector<double>& probabilities, int classes) {
  std::vector<std::int64_t> predicted(probabilities.size() / classes);
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    std::int64_t best = 0;  // the first maximum, as numpy's argmax
    for (int c = 1; c < classes; ++c)
      if (probabilities[i * classes + c] > probabilities[i * classes + best]) best = c;
    predicted[i] = best;
  }
  return predicted;
}

double metric_value(const std::string& name, const std::vector<std::int64_t>& labels,
                    const std::vector<double>& probabilities, int classes) {
  if (name == "auroc") return evaluation_common::auroc(labels, probabilities, classes);
  const auto m = evaluation_common::classification_metrics(labels, argmax_predictions(probabilities, classes), classes);
  if (name == "balanced_accuracy") return m.balanced_accuracy;
  if (name == "f1") return classes == 2 ? m.f1[1] : m.macro_f1;
  throw std::logic_error("unknown slide metric '" + name + "'");
}

}  // namespace

const std::vector<std::string>& slide_metric_names() {
  static const std::vector<std::string> names = {"auroc", "balanced_accuracy", "f1"};
  return names;
}

MetricValues slide_metrics(const std::vector<std::int64_t>& labels, const std::vector<double>& probabilities, int classes) {
  MetricValues values;
  for (const auto& name : slide_metric_names()) {
    try {
      values[name] = metric_value(name, labels, probabilities, classes);
    } catch (const std::invalid_argument&) {
      values[name] = std::numeric_limits<double>::quiet_NaN();  // e.g. AUROC with one class present
    }
  }
  return values;
}

MetricSummary summarise_folds(const std::vector<MetricValues>& per_fold) {
  MetricSummary summary;
  summary.per_fold = per_fold;
  for (const auto& name : slide_metric_names()) {
    std::vector<double> values;
    for (const auto& fold : per_fold)
      if (auto it = fold.find(name); it != fold.end() && !std::isnan(it->second)) values.push_back(it->second);
    if (values.empty()) {
      summary.mean[name] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    double mean = 0;
    for (double v : values) mean += v;
    mean /= static_cast<double>(values.size());
    summary.mean[name] = mean;
    if (values.size() < 2) continue;
    double squares = 0;
    for (double v : values) squares += (v - mean) * (v - mean);
    summary.sd[name] = std::sqrt(squares / static_cast<double>(values.size() - 1));
  }
  return summary;
}

void add_bootstrap_intervals(MetricSummary& summary, const std::vector<std::int64_t>& labels,
                             const std::vector<double>& probabilities, int classes, int resamples, std::uint64_t seed) {
  if (resamples <= 0 || labels.empty()) return;
  for (const auto& name : slide_metric_names()) {
    // The same seed for every metric: the intervals come from the same resamples.
    const auto interval = evaluation_common::bootstrap_interval(
        labels.size(),
        [&](const std::vector<std::size_t>& indices) {
          std::vector<std::int64_t> l(indices.size());
          std::vector<double> p(indices.size() * classes);
          for (std::size_t k = 0; k < indices.size(); ++k) {
            l[k] = labels[indices[k]];
            for (int c = 0; c < classes; ++c) p[k * classes + c] = probabilities[indices[k] * classes + c];
          }
          return metric_value(name, l, p, classes);
        },
        resamples, seed);
    summary.ci_low[name] = interval.low;
    summary.ci_high[name] = interval.high;
  }
}

}  // namespace histoflow::mil
