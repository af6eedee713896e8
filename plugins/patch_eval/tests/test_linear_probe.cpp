#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "fixtures.hpp"
#include "histoflow/evaluation_common/classification_metrics.hpp"
#include "histoflow/patch_eval/linear_probe_sweep.hpp"
#include "patch_dataset.hpp"

using namespace histoflow::patch_eval;

// docs/patch-benchmark.md: the same predictions as scikit-learn's LogisticRegression at each C, hence the same
// balanced accuracy. Not fragile: at sklearn's optimum the nearest test row is 1e-3 logits from a tie (C = 0.001),
// far more than the solver's gradient tolerance can move them.
TEST_CASE("linear probe predicts as scikit-learn's LogisticRegression at the same C: every test row, same balanced accuracy") {
  const auto f = patch_eval_test::load_fixture("linear.json");
  const auto dim = f["dim"].get<std::int64_t>();
  const auto classes = f["classes"].get<std::int64_t>();
  const auto n = f["train_rows"].get<std::int64_t>();
  const auto train = patch_eval_test::matrix(f["train_x"], n, dim);
  const auto test = patch_eval_test::matrix(f["test_x"], f["test_rows"].get<std::int64_t>(), dim);
  const auto train_y = f["train_y"].get<std::vector<std::int64_t>>();
  const auto test_y = f["test_y"].get<std::vector<std::int64_t>>();
  const LogisticFitOptions options;  // linear_probe's defaults: what the documented agreement is about
  for (const auto& fit : f["fits"]) {
    const double C = fit["C"].get<double>();
    const double lambda = 1.0 / (C * static_cast<double>(n));  // sklearn's C -> our lambda
    const LogisticModel model = fit_logistic_regression(train, train_y, classes, lambda, options);
    const auto predicted = predict(model, test);
    const double ours = histoflow::evaluation_common::classification_metrics(test_y, predicted, classes).balanced_accuracy;
    const double theirs = fit["balanced_accuracy"].get<double>();
    const auto sklearn_predictions = fit["predictions"].get<std::vector<std::int64_t>>();
    REQUIRE(predicted.size() == sklearn_predictions.size());
    int same = 0;
    for (std::size_t i = 0; i < predicted.size(); ++i) same += predicted[i] == sklearn_predictions[i];
    INFO("C = " << C << " (lambda " << lambda << "): ours " << ours << ", sklearn " << theirs << ", same predictions "
                << same << "/" << predicted.size() << ", " << model.evaluations << " evaluations");
    CHECK(same == static_cast<int>(sklearn_predictions.size()));
    CHECK(std::abs(ours - theirs) <= 1e-12);  // the same predictions: equal but for summation order
  }
}

TEST_CASE("linear probe sweep: lambda chosen on validation, warm-started from the largest, refitted on all rows") {
  const auto f = patch_eval_test::load_fixture("linear.json");
  const auto dim = f["dim"].get<std::int64_t>();
  PatchFeatures train, test;
  train.features = patch_eval_test::matrix(f["train_x"], f["train_rows"].get<std::int64_t>(), dim);
  train.labels = f["train_y"].get<std::vector<std::int64_t>>();
  train.class_names = {"a", "b", "c"};
  test.features = patch_eval_test::matrix(f["test_x"], f["test_rows"].get<std::int64_t>(), dim);
  test.labels = f["test_y"].get<std::vector<std::int64_t>>();
  test.class_names = train.class_names;
  SweepOptions options;
  options.lambdas = {1e-4, 1.0, 1e-2};
  options.seed = 3;
  const LinearProbeResult r = run_linear_probe(train, test, options);
  REQUIRE(r.sweep.size() == 3);
  CHECK(r.sweep[0].lambda == 1.0);
  CHECK(r.sweep[2].lambda == 1e-4);
  double best = 0;
  for (const auto& p : r.sweep) best = std::max(best, p.validation_balanced_accuracy);
  for (const auto& p : r.sweep)
    if (p.lambda == r.chosen_lambda) CHECK(p.validation_balanced_accuracy == best);
  CHECK(r.model.lambda == r.chosen_lambda);
  CHECK(r.test_predictions.size() == test.labels.size());
  // lambda = 1 on standardised features is heavily regularised: the validation split must prefer less.
  CHECK(r.chosen_lambda < 1.0);
}

TEST_CASE("stratified split keeps every class on both sides, is deterministic and covers each row once") {
  std::vector<std::int64_t> labels;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 10 + 5 * c; ++i) labels.push_back(c);
  const std::vector<std::string> names{"x", "y", "z"};
  const Split a = stratified_split(labels, names, 0.2, 11);
  const Split b = stratified_split(labels, names, 0.2, 11);
  CHECK(a.first == b.first);
  CHECK(a.second == b.second);
  CHECK(a.second.size() == 2 + 3 + 4);  // round(0.2 * 10), round(0.2 * 15), round(0.2 * 20)
  std::set<std::int64_t> all(a.first.begin(), a.first.end());
  all.insert(a.second.begin(), a.second.end());
  CHECK(all.size() == labels.size());
  CHECK(stratified_split(labels, names, 0.2, 12).second != a.second);
  CHECK_THROWS_WITH(stratified_split({0, 0, 1}, {"x", "lonely"}, 0.5, 0), Catch::Contains("class 'lonely' has 1 row"));
}

TEST_CASE("dataset checks: different class sets, widths, an empty class") {
  PatchFeatures train, test;
  train.features = {2, 2, {1, 0, 0, 1}};
  train.labels = {0, 1};
  train.class_names = {"ADI", "TUM"};
  test = train;
  test.class_names = {"ADI", "STR"};
  CHECK_THROWS_WITH(align_test_to_train(train, test, "train.h5", "test.h5"),
                    Catch::Contains("only in train (train.h5): 'TUM'") && Catch::Contains("only in test (test.h5): 'STR'"));
  test = train;
  test.features = {2, 3, {1, 0, 0, 0, 1, 0}};
  CHECK_THROWS_WITH(align_test_to_train(train, test, "train.h5", "test.h5"),
                    Catch::Contains("different widths: train.h5 has 2 dimensions, test.h5 has 3"));
  // Same classes in another order: test labels follow the training order.
  test = train;
  test.class_names = {"TUM", "ADI"};
  test.labels = {0, 1};
  align_test_to_train(train, test, "train.h5", "test.h5");
  CHECK(test.labels == std::vector<std::int64_t>{1, 0});
  CHECK(test.class_names == train.class_names);
  PatchFeatures empty = train;
  empty.class_names = {"ADI", "TUM", "MUC"};
  CHECK_THROWS_WITH(check_patch_dataset(empty, "train.h5"), Catch::Contains("empty class 'MUC'"));
}
