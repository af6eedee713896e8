#pragma once
// The protocol: patient-level stratified k-fold cross-validation with an inner validation split, each fold
// model also scoring an external cohort, and the fold-ensemble (mean probabilities) on it.
#include <functional>
#include <string>
#include <vector>

#include "bag.hpp"
#include "slide_metrics.hpp"
#include "trainer.hpp"

namespace histoflow::mil {

struct CrossValidationOptions {
  int folds = 5;
  double validation_fraction = 0.2;
  std::uint64_t seed = 0;
  TrainingOptions training;
  int bootstrap = 1000;  // resamples for the 95% intervals; 0 = none
  // After every training epoch: fold (0-based) and epoch (1-based). Early stopping skips a fold's last epochs.
  std::function<void(int fold, int epoch)> on_epoch;
};

struct Prediction {
  int fold = 0;          // the model that made it; -1 for the fold-ensemble
  std::size_t bag = 0;   // index into the bags (in-domain) or external bags
  BagPrediction prediction;
};

struct FoldRun {
  TrainedModel trained;
  std::vector<std::size_t> train, validation, test;  // bag indices
  std::int64_t peak_resident_bytes = 0;  // the process's, sampled while this fold trained and predicted
};

struct CrossValidationResult {
  std::vector<int> fold_of_bag;
  std::vector<FoldRun> folds;
  std::vector<Prediction> in_domain;          // every bag once, by the model of its test fold
  std::vector<Prediction> external;           // every external bag by every fold model
  std::vector<Prediction> external_ensemble;  // every external bag, fold -1
  MetricSummary in_domain_metrics;            // mean ± sd over folds; CI from the pooled out-of-fold predictions
  MetricSummary external_metrics;             // mean ± sd over fold models
  MetricSummary ensemble_metrics;             // the ensemble's values (as "mean") with a CI
  std::int64_t resident_bytes_before = 0;     // the process's resident memory when training began
  std::int64_t peak_resident_bytes = 0;       // ... and its sampled peak over every fold
};

// The patient of each bag decides its fold; a patient's class for stratification is its most frequent bag
// label. `progress(fold)` is called after each fold's training. Throws std::invalid_argument (with the
// reason: too few patients of a class, a single class) before training anything.
CrossValidationResult run_cross_validation(const std::vector<Bag>& bags, const std::vector<Bag>& external,
                                           const CrossValidationOptions& options,
                                           const std::function<void(int, const FoldRun&)>& progress = {});

}  // namespace histoflow::mil
