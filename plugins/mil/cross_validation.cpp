#include "cross_validation.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "patient_folds.hpp"
#include "resident_memory.hpp"

namespace histoflow::mil {
namespace {

std::vector<std::int64_t> labels_of(const std::vector<Bag>& bags, const std::vector<std::size_t>& indices) {
  std::vector<std::int64_t> labels;
  for (std::size_t i : indices) labels.push_back(bags[i].label);
  return labels;
}

std::vector<double> probabilities_of(const std::vector<Prediction>& predictions) {
  std::vector<double> p;
  for (const auto& prediction : predictions)
    p.insert(p.end(), prediction.prediction.probabilities.begin(), prediction.prediction.probabilities.end());
  return p;
}

}  // namespace

CrossValidationResult run_cross_validation(const std::vector<Bag>& bags, const std::vector<Bag>& external,
                                           const CrossValidationOptions& options,
                                           const std::function<void(int, const FoldRun&)>& progress) {
  const int classes = static_cast<int>(options.training.model.classes);
  // Patients, in order of first appearance, with their most frequent label.
  std::map<std::string, std::size_t> patient_index;
  std::vector<std::map<std::int64_t, int>> label_counts;
  std::vector<std::size_t> patient_of_bag;
  for (const auto& bag : bags) {
    const auto [it, added] = patient_index.emplace(bag.patient, label_counts.size());
    if (added) label_counts.emplace_back();
    ++label_counts[it->second][bag.label];
    patient_of_bag.push_back(it->second);
  }
  std::vector<std::int64_t> patient_labels;
  for (const auto& counts : label_counts) {
    std::int64_t best = counts.begin()->first;
    for (const auto& [label, count] : counts)
      if (count > counts.at(best)) best = label;
    patient_labels.push_back(best);
  }
  const std::vector<int> patient_fold = assign_patient_folds(patient_labels, options.folds, options.seed);

  CrossValidationResult result;
  for (std::size_t b = 0; b < bags.size(); ++b) result.fold_of_bag.push_back(patient_fold[patient_of_bag[b]]);
  std::vector<MetricValues> fold_metrics, external_fold_metrics;
  std::vector<double> ensemble(external.size() * classes, 0.0);
  ResidentMemorySampler memory;
  result.resident_bytes_before = memory.start_bytes();
  for (int fold = 0; fold < options.folds; ++fold) {
    FoldRun run;
    // Inner validation split by patient, among this fold's training patients.
    std::vector<std::size_t> training_patients;
    for (std::size_t p = 0; p < patient_fold.size(); ++p)
      if (patient_fold[p] != fold) training_patients.push_back(p);
    const auto is_validation =
        validation_split(training_patients, patient_labels, options.validation_fraction, options.seed + 17 * (fold + 1));
    std::vector<bool> validation_patient(patient_fold.size(), false);
    for (std::size_t i = 0; i < training_patients.size(); ++i) validation_patient[training_patients[i]] = is_validation[i];
    for (std::size_t b = 0; b < bags.size(); ++b) {
      const std::size_t p = patient_of_bag[b];
      (patient_fold[p] == fold ? run.test : validation_patient[p] ? run.validation : run.train).push_back(b);
    }
    std::vector<const Bag*> train, validation;
    for (std::size_t b : run.train) train.push_back(&bags[b]);
    for (std::size_t b : run.validation) validation.push_back(&bags[b]);
    TrainingOptions training = options.training;
    if (options.on_epoch) training.on_epoch = [&](int epoch) { options.on_epoch(fold, epoch); };
    run.trained = train_aggregator(train, validation, training, options.seed * 1000003ULL + static_cast<std::uint64_t>(fold));

    std::vector<Prediction> test_predictions;
    for (std::size_t b : run.test)
      test_predictions.push_back({fold, b, predict_bag(run.trained, bags[b], options.training.device)});
    fold_metrics.push_back(slide_metrics(labels_of(bags, run.test), probabilities_of(test_predictions), classes));
    result.in_domain.insert(result.in_domain.end(), test_predictions.begin(), test_predictions.end());

    if (!external.empty()) {
      std::vector<Prediction> external_predictions;
      std::vector<std::int64_t> external_labels;
      for (std::size_t b = 0; b < external.size(); ++b) {
        external_predictions.push_back({fold, b, predict_bag(run.trained, external[b], options.training.device)});
        external_labels.push_back(external[b].label);
        for (int c = 0; c < classes; ++c)
          ensemble[b * classes + c] += external_predictions.back().prediction.probabilities[c] / options.folds;
      }
      external_fold_metrics.push_back(slide_metrics(external_labels, probabilities_of(external_predictions), classes));
      result.external.insert(result.external.end(), external_predictions.begin(), external_predictions.end());
    }
    run.peak_resident_bytes = memory.restart_window();
    result.peak_resident_bytes = std::max(result.peak_resident_bytes, run.peak_resident_bytes);
    if (progress) progress(fold, run);
    result.folds.push_back(std::move(run));
  }

  // In-domain: mean ± sd over folds; the interval from the pooled out-of-fold predictions.
  result.in_domain_metrics = summarise_folds(fold_metrics);
  std::vector<std::int64_t> pooled_labels;
  for (const auto& p : result.in_domain) pooled_labels.push_back(bags[p.bag].label);
  add_bootstrap_intervals(result.in_domain_metrics, pooled_labels, probabilities_of(result.in_domain), classes,
                          options.bootstrap, options.seed);
  if (!external.empty()) {
    result.external_metrics = summarise_folds(external_fold_metrics);
    std::vector<std::int64_t> external_labels;
    for (std::size_t b = 0; b < external.size(); ++b) {
      external_labels.push_back(external[b].label);
      Prediction p{-1, b, {}};
      p.prediction.probabilities.assign(ensemble.begin() + static_cast<std::ptrdiff_t>(b * classes),
                                        ensemble.begin() + static_cast<std::ptrdiff_t>((b + 1) * classes));
      result.external_ensemble.push_back(std::move(p));
    }
    result.ensemble_metrics.mean = slide_metrics(external_labels, ensemble, classes);
    result.ensemble_metrics.per_fold = {result.ensemble_metrics.mean};
    add_bootstrap_intervals(result.ensemble_metrics, external_labels, ensemble, classes, options.bootstrap, options.seed);
  }
  return result;
}

}  // namespace histoflow::mil
