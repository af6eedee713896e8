#pragma once
// Multi-class classification metrics with scikit-learn's definitions (checked against sklearn 1.2 fixtures).
//
// Labels are class indices 0..classes-1. The confusion matrix has true classes as rows and predicted classes
// as columns. Conventions, as in sklearn with zero_division="warn" (which scores 0):
//   - recall of a class with no true samples is 0; precision of a class never predicted is 0; F1 is 0 when
//     precision + recall is 0.
//   - balanced accuracy is the mean recall over the classes that occur in y_true (others are left out).
//   - macro averages run over the classes that occur in y_true or y_pred (sklearn's default `labels`);
//     weighted averages weight by true support (classes absent from y_true weigh 0). With no samples at all
//     the averages are 0.
#include <cstdint>
#include <string>
#include <vector>

namespace histoflow::evaluation_common {

struct ConfusionMatrix {
  std::int64_t classes = 0;
  std::vector<std::int64_t> counts;  // classes * classes, row-major: counts[true * classes + predicted]

  std::int64_t at(std::int64_t true_class, std::int64_t predicted_class) const {
    return counts[static_cast<std::size_t>(true_class * classes + predicted_class)];
  }
  std::int64_t true_count(std::int64_t c) const;       // row sum: support
  std::int64_t predicted_count(std::int64_t c) const;  // column sum
  std::int64_t total() const;
};

// Throws std::invalid_argument when sizes differ or a label is outside [0, classes).
ConfusionMatrix confusion_matrix(const std::vector<std::int64_t>& y_true, const std::vector<std::int64_t>& y_pred,
                                 std::int64_t classes);

struct ClassificationMetrics {
  double accuracy = 0;
  double balanced_accuracy = 0;
  double macro_f1 = 0;
  double weighted_f1 = 0;
  // Per class, index = class (all `classes`, including those absent from both y_true and y_pred).
  std::vector<double> precision;
  std::vector<double> recall;
  std::vector<double> f1;
  std::vector<std::int64_t> support;  // true count
};

ClassificationMetrics classification_metrics(const ConfusionMatrix& matrix);

inline ClassificationMetrics classification_metrics(const std::vector<std::int64_t>& y_true,
                                                    const std::vector<std::int64_t>& y_pred, std::int64_t classes) {
  return classification_metrics(confusion_matrix(y_true, y_pred, classes));
}

// Confusion matrix as CSV: a header "true\predicted,<class names>", then one row per true class.
std::string confusion_matrix_csv(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names);

}  // namespace histoflow::evaluation_common
