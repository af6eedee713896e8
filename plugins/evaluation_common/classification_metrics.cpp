#include "histoflow/evaluation_common/classification_metrics.hpp"

#include <sstream>
#include <stdexcept>

#include "histoflow/csv.hpp"

namespace histoflow::evaluation_common {

std::int64_t ConfusionMatrix::true_count(std::int64_t c) const {
  std::int64_t sum = 0;
  for (std::int64_t p = 0; p < classes; ++p) sum += at(c, p);
  return sum;
}

std::int64_t ConfusionMatrix::predicted_count(std::int64_t c) const {
  std::int64_t sum = 0;
  for (std::int64_t t = 0; t < classes; ++t) sum += at(t, c);
  return sum;
}

std::int64_t ConfusionMatrix::total() const {
  std::int64_t sum = 0;
  for (std::int64_t n : counts) sum += n;
  return sum;
}

ConfusionMatrix confusion_matrix(const std::vector<std::int64_t>& y_true, const std::vector<std::int64_t>& y_pred,
                                 std::int64_t classes) {
  if (y_true.size() != y_pred.size())
    throw std::invalid_argument("confusion matrix: " + std::to_string(y_true.size()) + " true labels but " +
                                std::to_string(y_pred.size()) + " predictions");
  if (classes <= 0) throw std::invalid_argument("confusion matrix: needs at least one class");
  ConfusionMatrix m{classes, std::vector<std::int64_t>(static_cast<std::size_t>(classes * classes), 0)};
  for (std::size_t i = 0; i < y_true.size(); ++i) {
    const std::int64_t t = y_true[i], p = y_pred[i];
    if (t < 0 || t >= classes || p < 0 || p >= classes)
      throw std::invalid_argument("confusion matrix: sample " + std::to_string(i) + " has label " + std::to_string(t) +
                                  " / prediction " + std::to_string(p) + " outside [0, " + std::to_string(classes) + ")");
    ++m.counts[static_cast<std::size_t>(t * classes + p)];
  }
  return m;
}

ClassificationMetrics classification_metrics(const ConfusionMatrix& m) {
  ClassificationMetrics r;
  const auto n = static_cast<std::size_t>(m.classes);
  r.precision.assign(n, 0.0);
  r.recall.assign(n, 0.0);
  r.f1.assign(n, 0.0);
  r.support.assign(n, 0);
  const std::int64_t total = m.total();
  std::int64_t correct = 0, present_in_true = 0, present_in_either = 0;
  double recall_sum = 0, f1_sum = 0, weighted_f1_sum = 0;
  for (std::int64_t c = 0; c < m.classes; ++c) {
    const auto i = static_cast<std::size_t>(c);
    const std::int64_t tp = m.at(c, c), support = m.true_count(c), predicted = m.predicted_count(c);
    correct += tp;
    r.support[i] = support;
    // Ill-defined ratios score 0 (sklearn's zero_division="warn").
    r.precision[i] = predicted > 0 ? static_cast<double>(tp) / static_cast<double>(predicted) : 0.0;
    r.recall[i] = support > 0 ? static_cast<double>(tp) / static_cast<double>(support) : 0.0;
    const double denom = r.precision[i] + r.recall[i];
    r.f1[i] = denom > 0 ? 2.0 * r.precision[i] * r.recall[i] / denom : 0.0;
    if (support > 0) {
      ++present_in_true;
      recall_sum += r.recall[i];
      weighted_f1_sum += r.f1[i] * static_cast<double>(support);
    }
    if (support > 0 || predicted > 0) {
      ++present_in_either;
      f1_sum += r.f1[i];
    }
  }
  r.accuracy = total > 0 ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
  r.balanced_accuracy = present_in_true > 0 ? recall_sum / static_cast<double>(present_in_true) : 0.0;
  r.macro_f1 = present_in_either > 0 ? f1_sum / static_cast<double>(present_in_either) : 0.0;
  r.weighted_f1 = total > 0 ? weighted_f1_sum / static_cast<double>(total) : 0.0;
  return r;
}

std::string confusion_matrix_csv(const ConfusionMatrix& m, const std::vector<std::string>& class_names) {
  if (static_cast<std::int64_t>(class_names.size()) != m.classes)
    throw std::invalid_argument("confusion matrix CSV: " + std::to_string(class_names.size()) + " class names for " +
                                std::to_string(m.classes) + " classes");
  std::ostringstream out;
  out << "true\\predicted";
  for (const auto& name : class_names) out << ',' << csv_field(name);
  out << '\n';
  for (std::int64_t t = 0; t < m.classes; ++t) {
    out << csv_field(class_names[static_cast<std::size_t>(t)]);
    for (std::int64_t p = 0; p < m.classes; ++p) out << ',' << m.at(t, p);
    out << '\n';
  }
  return out.str();
}

}  // namespace histoflow::evaluation_common
