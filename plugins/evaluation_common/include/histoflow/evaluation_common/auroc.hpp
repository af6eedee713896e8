#pragma once
// Area under the ROC curve with scikit-learn's definitions (roc_curve, roc_auc_score): ties in the scores
// form one ROC point, the curve is integrated by trapezoids, and the multi-class score is the unweighted
// mean of one-vs-rest AUCs (multi_class="ovr", average="macro").
#include <cstdint>
#include <vector>

namespace histoflow::evaluation_common {

struct RocCurve {
  std::vector<double> fpr;
  std::vector<double> tpr;
  std::vector<double> thresholds;  // the first is +infinity (sklearn >= 1.3 convention; 1.2 used max + 1)
};

// `positive[i]` is true for positives. Collinear points are dropped as with drop_intermediate=True.
// Throws std::invalid_argument when only one class is present (the curve is undefined).
RocCurve roc_curve(const std::vector<bool>& positive, const std::vector<double>& scores, bool drop_intermediate = true);

double binary_auroc(const std::vector<bool>& positive, const std::vector<double>& scores);

// `labels` in [0, classes); `probabilities` row-major [n, classes]. Two classes: the AUC of class 1's score.
// More: macro one-vs-rest. Throws when a class has no positive or no negative sample.
double auroc(const std::vector<std::int64_t>& labels, const std::vector<double>& probabilities, int classes);

}  // namespace histoflow::evaluation_common
