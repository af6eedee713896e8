#include "histoflow/evaluation_common/auroc.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace histoflow::evaluation_common {

RocCurve roc_curve(const std::vector<bool>& positive, const std::vector<double>& scores, bool drop_intermediate) {
  if (positive.size() != scores.size())
    throw std::invalid_argument("roc_curve: " + std::to_string(positive.size()) + " labels but " +
                                std::to_string(scores.size()) + " scores");
  const std::size_t n = scores.size();
  // Descending scores; a stable sort as sklearn's mergesort, so equal scores keep their order (irrelevant
  // for the curve, which only looks at the last index of each run of ties).
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });

  std::vector<double> tps, fps, thresholds;
  double tp = 0, fp = 0;
  for (std::size_t k = 0; k < n; ++k) {
    (positive[order[k]] ? tp : fp) += 1;
    if (k + 1 == n || scores[order[k + 1]] != scores[order[k]]) {
      tps.push_back(tp);
      fps.push_back(fp);
      thresholds.push_back(scores[order[k]]);
    }
  }
  if (tp == 0 || fp == 0)
    throw std::invalid_argument(std::string("ROC AUC is undefined: no ") + (tp == 0 ? "positive" : "negative") +
                                " sample among " + std::to_string(n));

  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < tps.size(); ++i) {
    // sklearn keeps the end points and every point where the second difference of fps or tps is non-zero.
    const bool end = i == 0 || i + 1 == tps.size();
    if (!drop_intermediate || end || (fps[i - 1] - 2 * fps[i] + fps[i + 1]) != 0 || (tps[i - 1] - 2 * tps[i] + tps[i + 1]) != 0)
      keep.push_back(i);
  }
  RocCurve curve;
  curve.fpr.push_back(0.0);
  curve.tpr.push_back(0.0);
  curve.thresholds.push_back(std::numeric_limits<double>::infinity());
  for (std::size_t i : keep) {
    curve.fpr.push_back(fps[i] / fp);
    curve.tpr.push_back(tps[i] / tp);
    curve.thresholds.push_back(thresholds[i]);
  }
  return curve;
}

double binary_auroc(const std::vector<bool>& positive, const std::vector<double>& scores) {
  const RocCurve c = roc_curve(positive, scores, true);
  double area = 0;  // np.trapz(tpr, fpr)
  for (std::size_t i = 1; i < c.fpr.size(); ++i) area += (c.fpr[i] - c.fpr[i - 1]) * (c.tpr[i] + c.tpr[i - 1]) / 2.0;
  return area;
}

double auroc(const std::vector<std::int64_t>& labels, const std::vector<double>& probabilities, int classes) {
  if (classes < 2) throw std::invalid_argument("auroc needs at least 2 classes, got " + std::to_string(classes));
  if (probabilities.size() != labels.size() * static_cast<std::size_t>(classes))
    throw std::invalid_argument("auroc: " + std::to_string(labels.size()) + " labels need " +
                                std::to_string(labels.size() * classes) + " probabilities, got " +
                                std::to_string(probabilities.size()));
  const auto one_vs_rest = [&](int c) {
    std::vector<bool> positive(labels.size());
    std::vector<double> scores(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
      positive[i] = labels[i] == c;
      scores[i] = probabilities[i * classes + c];
    }
    return binary_auroc(positive, scores);
  };
  if (classes == 2) return one_vs_rest(1);
  double sum = 0;
  for (int c = 0; c < classes; ++c) sum += one_vs_rest(c);
  return sum / classes;
}

}  // namespace histoflow::evaluation_common
