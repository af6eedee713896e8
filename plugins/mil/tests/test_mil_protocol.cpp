// The MIL protocol: patient-level folds, determinism, every aggregator's forward pass and training on an
// easily learnable bag set.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>

#include "attention_layers.hpp"
#include "cross_validation.hpp"
#include "histoflow/mil/aggregator.hpp"
#include "patient_folds.hpp"
#include "resident_memory.hpp"

using namespace histoflow::mil;

namespace {

// Label-1 bags hide a few "tumour" tiles (a shifted direction); label-0 bags are noise. Patients have one
// or two slides.
std::vector<Bag> learnable_bags(int patients, std::int64_t dim, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<Bag> bags;
  for (int p = 0; p < patients; ++p) {
    const std::int64_t label = p % 2;
    const int slides = 1 + (p % 3 == 0);
    for (int s = 0; s < slides; ++s) {
      Bag bag;
      bag.patient = "P" + std::to_string(p);
      bag.id = bag.patient + "_S" + std::to_string(s);
      bag.slides = {bag.id};
      bag.label = label;
      const std::int64_t n = 20 + static_cast<std::int64_t>(random() % 30);
      auto f = torch::empty({n, dim});
      auto* v = f.data_ptr<float>();
      for (std::int64_t i = 0; i < n * dim; ++i) v[i] = noise(random);
      if (label == 1)
        for (std::int64_t t = 0; t < n / 5 + 1; ++t)
          for (std::int64_t d = 0; d < 4; ++d) v[t * dim + d] += 3.0f;
      bag.features = f;
      for (std::int64_t t = 0; t < n; ++t) bag.coords.push_back(t * 224), bag.coords.push_back(0), bag.tile_slide.push_back(0);
      bags.push_back(std::move(bag));
    }
  }
  return bags;
}

CrossValidationOptions quick_options(const std::string& aggregator, std::int64_t dim) {
  CrossValidationOptions o;
  o.folds = 3;
  o.seed = 3;
  o.bootstrap = 50;
  o.training.aggregator = aggregator;
  o.training.model = {dim, 2, 32, 0.1};
  o.training.learning_rate = 2e-3;
  o.training.epochs = 12;
  o.training.patience = 4;
  o.training.max_tiles = 32;
  return o;
}

}  // namespace

TEST_CASE("folds are by patient, stratified, and every patient is tested once", "[mil][protocol]") {
  std::vector<std::int64_t> labels;
  for (int p = 0; p < 31; ++p) labels.push_back(p < 12 ? 1 : 0);
  const auto folds = assign_patient_folds(labels, 5, 7);
  REQUIRE(folds.size() == labels.size());
  std::map<int, std::map<std::int64_t, int>> per_fold;
  for (std::size_t p = 0; p < folds.size(); ++p) {
    REQUIRE(folds[p] >= 0);
    REQUIRE(folds[p] < 5);
    ++per_fold[folds[p]][labels[p]];
  }
  REQUIRE(per_fold.size() == 5);
  for (const auto& [fold, counts] : per_fold) {
    INFO("fold " << fold);
    CHECK(counts.size() == 2);  // both classes in every test fold
    CHECK(counts.at(1) >= 2);   // 12 positives over 5 folds: 2 or 3 each
    CHECK(counts.at(1) <= 3);
  }
  CHECK(assign_patient_folds(labels, 5, 7) == folds);
  CHECK(assign_patient_folds(labels, 5, 8) != folds);
  CHECK_THROWS_WITH(assign_patient_folds({0, 0, 0, 1, 1}, 3, 1), Catch::Contains("class '1' has 2 patient(s) for 3 folds"));
  CHECK_THROWS_WITH(assign_patient_folds({1, 1, 1}, 2, 1), Catch::Contains("same label"));

  const std::vector<std::size_t> candidates = {0, 1, 2, 3, 4, 5, 12, 13, 14, 15};
  const auto validation = validation_split(candidates, labels, 0.2, 1);
  std::map<std::int64_t, int> held_out;
  for (std::size_t i = 0; i < candidates.size(); ++i) held_out[labels[candidates[i]]] += validation[i];
  CHECK(held_out[0] == 1);  // round(0.2 * 4) = 1
  CHECK(held_out[1] == 1);  // round(0.2 * 6) = 1
}

TEST_CASE("cross-validation keeps each patient's bags in one fold", "[mil][protocol]") {
  const auto bags = learnable_bags(12, 8, 1);
  auto options = quick_options("mean_mlp", 8);
  options.training.epochs = 2;
  const auto result = run_cross_validation(bags, {}, options);
  std::map<std::string, std::set<int>> folds_of_patient;
  for (std::size_t b = 0; b < bags.size(); ++b) folds_of_patient[bags[b].patient].insert(result.fold_of_bag[b]);
  for (const auto& [patient, folds] : folds_of_patient) CHECK(folds.size() == 1);
  REQUIRE(result.in_domain.size() == bags.size());
  for (const auto& fold : result.folds) {
    std::set<std::string> train, test;
    for (auto b : fold.train) train.insert(bags[b].patient);
    for (auto b : fold.validation) train.insert(bags[b].patient);
    for (auto b : fold.test) CHECK(!train.count(bags[b].patient));
  }
}

TEST_CASE("the same seed gives the same numbers", "[mil][protocol]") {
  const auto bags = learnable_bags(12, 8, 2);
  const auto external = learnable_bags(4, 8, 9);
  auto options = quick_options("gated_attention", 8);
  options.training.epochs = 3;
  const auto a = run_cross_validation(bags, external, options);
  const auto b = run_cross_validation(bags, external, options);
  REQUIRE(a.in_domain.size() == b.in_domain.size());
  for (std::size_t i = 0; i < a.in_domain.size(); ++i) {
    CHECK(a.in_domain[i].prediction.probabilities == b.in_domain[i].prediction.probabilities);
    CHECK(a.in_domain[i].prediction.attention == b.in_domain[i].prediction.attention);
  }
  CHECK(a.ensemble_metrics.mean == b.ensemble_metrics.mean);
  CHECK(a.in_domain_metrics.ci_low == b.in_domain_metrics.ci_low);
  options.seed = 4;
  const auto c = run_cross_validation(bags, external, options);
  CHECK(c.in_domain[0].prediction.probabilities != a.in_domain[0].prediction.probabilities);
}

TEST_CASE("every aggregator gives class logits for a bag of any size", "[mil][aggregators]") {
  const auto names = aggregator_names();
  for (const char* expected : {"mean_mlp", "gated_attention", "clam_sb", "transmil", "transformer"})
    CHECK(std::find(names.begin(), names.end(), expected) != names.end());
  CHECK_THROWS_WITH(find_aggregator("nope"), Catch::Contains("known: clam_sb, gated_attention"));
  torch::Generator generator = at::detail::createCPUGenerator(1);
  for (const auto& name : names) {
    const auto& spec = find_aggregator(name);
    auto model = spec.create({12, 3, 32, 0.25});
    initialise_parameters(*model, generator);
    for (std::int64_t n : {1, 2, 7, 50}) {
      INFO(name << " with " << n << " tiles");
      model->train();
      auto trained = model->forward(torch::randn({n, 12}), 2, generator);
      CHECK(trained.logits.sizes() == torch::IntArrayRef({3}));
      trained.logits.sum().backward();
      model->eval();
      torch::NoGradGuard no_grad;
      const auto out = model->forward(torch::randn({n, 12}), std::nullopt, generator);
      CHECK(out.logits.sizes() == torch::IntArrayRef({3}));
      CHECK(out.attention.defined() == spec.has_attention);
      if (spec.has_attention) {
        CHECK(out.attention.sizes() == torch::IntArrayRef({n}));
        CHECK(out.attention.sum().item<double>() == Approx(1.0).margin(1e-5));
      }
    }
  }
}

TEST_CASE("every aggregator learns an easily learnable bag set", "[mil][aggregators]") {
  const auto bags = learnable_bags(24, 16, 5);
  const auto external = learnable_bags(8, 16, 6);
  for (const auto& name : aggregator_names()) {
    INFO(name);
    const auto result = run_cross_validation(bags, external, quick_options(name, 16));
    CHECK(result.in_domain_metrics.mean.at("auroc") >= 0.9);
    CHECK(result.ensemble_metrics.mean.at("auroc") >= 0.9);
    CHECK(result.in_domain_metrics.mean.at("balanced_accuracy") >= 0.75);
  }
}

TEST_CASE("cross-validation reports every epoch of every fold, and the memory it used", "[mil][protocol]") {
  const auto bags = learnable_bags(12, 8, 3);
  auto options = quick_options("gated_attention", 8);
  options.training.epochs = 4;
  std::vector<std::pair<int, int>> reported;  // (fold, epoch)
  options.on_epoch = [&](int fold, int epoch) { reported.emplace_back(fold, epoch); };
  int folds_done = 0;
  const auto result = run_cross_validation(bags, {}, options, [&](int fold, const FoldRun&) { CHECK(fold == folds_done++); });
  CHECK(folds_done == 3);
  std::vector<std::pair<int, int>> expected;
  for (int f = 0; f < 3; ++f)
    for (int e = 1; e <= result.folds[static_cast<std::size_t>(f)].trained.epochs_run; ++e) expected.emplace_back(f, e);
  CHECK(reported == expected);
  CHECK(result.resident_bytes_before > 0);
  CHECK(result.peak_resident_bytes >= result.resident_bytes_before);
  for (const auto& fold : result.folds) CHECK(fold.peak_resident_bytes > 0);
}

TEST_CASE("the transformer trains on and scores a 10,000-tile bag in bounded memory", "[mil][aggregators][memory]") {
  // Whole-bag attention of 10,000 tiles is [8, 10001, 10001] floats, 3.2 GB per temporary: resident memory
  // swung between 2 and 9 GB. Training draws max_tiles tiles per bag; validation and prediction compute the
  // attention in blocks (whole-bag training: test_mil_attention.cpp).
  const std::int64_t tiles = 10000, dim = 384;
  torch::Generator generator = at::detail::createCPUGenerator(5);
  std::vector<Bag> bags(3);
  for (std::size_t b = 0; b < bags.size(); ++b) {
    Bag& bag = bags[b];
    bag.id = bag.patient = "P" + std::to_string(b);
    bag.slides = {bag.id};
    bag.label = static_cast<std::int64_t>(b % 2);
    bag.features = torch::randn({tiles, dim}, generator) + static_cast<double>(bag.label);
    bag.tile_slide.assign(static_cast<std::size_t>(tiles), 0);
    for (std::int64_t t = 0; t < tiles; ++t) bag.coords.push_back(t * 224), bag.coords.push_back(0);
  }
  TrainingOptions options;
  options.aggregator = "transformer";
  options.model = {dim, 2, 64, 0.1};  // the attention's memory depends on heads and tiles, not on the width
  options.epochs = 1;
  options.learning_rate = 1e-3;
  REQUIRE(options.max_tiles == 512);  // the default: what bounds training
  ResidentMemorySampler memory;
  const auto trained = train_aggregator({&bags[0], &bags[1]}, {&bags[2]}, options, 7);
  const auto prediction = predict_bag(trained, bags[2], torch::kCPU);
  const std::int64_t growth = memory.peak_bytes() - memory.start_bytes();
  INFO("resident memory grew by " << growth / (1 << 20) << " MiB");
  CHECK(growth < std::int64_t{1536} << 20);
  CHECK(trained.epochs_run == 1);
  CHECK(trained.validation_loss.size() == 1);
  REQUIRE(prediction.attention.size() == static_cast<std::size_t>(tiles));
  double sum = 0;
  for (float a : prediction.attention) sum += a;
  CHECK(sum == Approx(1.0).margin(1e-3));
}
