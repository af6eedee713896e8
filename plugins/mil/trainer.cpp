#include "trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <limits>
#include <random>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "patient_folds.hpp"

namespace histoflow::mil {
namespace {

using StateSnapshot = std::vector<torch::Tensor>;

StateSnapshot snapshot(torch::nn::Module& module) {
  StateSnapshot state;
  for (const auto& p : module.parameters()) state.push_back(p.detach().clone());
  return state;
}

void restore(torch::nn::Module& module, const StateSnapshot& state) {
  torch::NoGradGuard no_grad;
  auto parameters = module.parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i) parameters[i].copy_(state[i]);
}

torch::Tensor weighted_loss(const AggregatorOutput& out, std::int64_t label, const std::vector<double>& weights) {
  const auto target = torch::full({1}, label, torch::TensorOptions().dtype(torch::kLong).device(out.logits.device()));
  // One bag per step: a weighted mean-reduced cross-entropy would divide the weight out again.
  auto loss = torch::cross_entropy_loss(out.logits.unsqueeze(0), target) * weights[static_cast<std::size_t>(label)];
  if (out.auxiliary_loss.defined()) loss = loss + out.auxiliary_loss;
  return loss;
}

// Mean and sd (population) of every tile of `bags`, bag by bag: no copy of the whole training set (a fold of
// 100 bags of 20,000 tiles x 1024 features is 8 GB).
std::pair<torch::Tensor, torch::Tensor> tile_statistics(const std::vector<const Bag*>& bags) {
  torch::Tensor sum, squares;
  std::int64_t tiles = 0;
  for (const Bag* b : bags) {
    const auto bag_sum = b->features.sum(0, /*keepdim=*/false, torch::kDouble);
    sum = sum.defined() ? sum + bag_sum : bag_sum;
    tiles += b->features.size(0);
  }
  const auto mean = (sum / static_cast<double>(tiles)).to(torch::kFloat);
  for (const Bag* b : bags) {
    const auto bag_squares = (b->features - mean).square().sum(0, /*keepdim=*/false, torch::kDouble);
    squares = squares.defined() ? squares + bag_squares : bag_squares;
  }
  return {mean, (squares / static_cast<double>(tiles)).sqrt().to(torch::kFloat).clamp_min(1e-6)};
}

}  // namespace

torch::Tensor standardized(const TrainedModel& model, const torch::Tensor& features, torch::Device device) {
  if (!model.input_mean.defined()) return features.to(device);
  return ((features - model.input_mean) / model.input_std).to(device);
}

double train_on_bag(TrainedModel& model, torch::optim::Optimizer& optimizer, const Bag& bag,
                    const std::vector<double>& class_weights, const TrainingOptions& options, torch::Generator& generator) {
  torch::Tensor features = bag.features;
  const std::int64_t n = features.size(0);
  if (options.max_tiles > 0 && n > options.max_tiles)
    features = features.index_select(0, torch::randperm(n, generator, torch::kLong).slice(0, 0, options.max_tiles));
  const auto out = model.model->forward(standardized(model, features, options.device), bag.label, generator);
  auto loss = weighted_loss(out, bag.label, class_weights);
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
  return loss.item<double>();
}

std::vector<double> class_weights(const std::vector<const Bag*>& bags, std::int64_t classes, bool balanced) {
  std::vector<double> counts(static_cast<std::size_t>(classes), 0.0), weights(static_cast<std::size_t>(classes), 1.0);
  if (!balanced) return weights;
  for (const Bag* b : bags) counts[static_cast<std::size_t>(b->label)] += 1;
  for (std::size_t c = 0; c < counts.size(); ++c)
    weights[c] = counts[c] > 0 ? static_cast<double>(bags.size()) / (static_cast<double>(classes) * counts[c]) : 0.0;
  return weights;
}

TrainedModel train_aggregator(const std::vector<const Bag*>& train, const std::vector<const Bag*>& validation,
                              const TrainingOptions& options, std::uint64_t seed) {
  if (train.empty()) throw std::invalid_argument("no training bags");
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  TrainedModel result;
  if (options.standardize) {
    // Features of different encoders differ in scale by orders of magnitude; the training tiles of this
    // fold (never its test tiles) set the scale.
    std::tie(result.input_mean, result.input_std) = tile_statistics(train);
  }
  const auto prepare = [&](const torch::Tensor& features) { return standardized(result, features, options.device); };
  result.model = find_aggregator(options.aggregator).create(options.model);
  initialise_parameters(*result.model, generator);
  result.model->to(options.device);
  torch::optim::AdamW optimizer(result.model->parameters(),
                                torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
  const auto weights = class_weights(train, options.model.classes, options.class_weighting);

  std::vector<std::size_t> order(train.size());
  double best = std::numeric_limits<double>::infinity();
  StateSnapshot best_state;
  int epochs_without_improvement = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    result.model->train();
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    deterministic_shuffle(order, seed * 31ULL + static_cast<std::uint64_t>(epoch));
    double total = 0;
    for (std::size_t index : order) {
      if (options.on_step) options.on_step();
      total += train_on_bag(result, optimizer, *train[index], weights, options, generator);
    }
    result.train_loss.push_back(total / static_cast<double>(train.size()));
    result.epochs_run = epoch;
    if (validation.empty()) {
      result.best_epoch = epoch;
      if (options.on_epoch) options.on_epoch(epoch);
      continue;
    }
    result.model->eval();
    double validation_total = 0;
    {
      torch::NoGradGuard no_grad;
      for (const Bag* bag : validation) {
        if (options.on_step) options.on_step();
        validation_total +=
            weighted_loss(result.model->forward(prepare(bag->features), std::nullopt, generator), bag->label, weights)
                .item<double>();
      }
    }
    const double validation_loss = validation_total / static_cast<double>(validation.size());
    result.validation_loss.push_back(validation_loss);
    if (options.on_epoch) options.on_epoch(epoch);
    if (validation_loss < best - 1e-9) {
      best = validation_loss;
      best_state = snapshot(*result.model);
      result.best_epoch = epoch;
      epochs_without_improvement = 0;
    } else if (++epochs_without_improvement >= options.patience) {
      break;
    }
  }
  if (!best_state.empty()) restore(*result.model, best_state);
  result.model->eval();
  return result;
}

BagPrediction predict_bag(const TrainedModel& trained, const Bag& bag, torch::Device device) {
  torch::NoGradGuard no_grad;
  torch::Generator unused = at::detail::createCPUGenerator(0);  // eval mode draws nothing
  trained.model->eval();
  const auto out = trained.model->forward(standardized(trained, bag.features, device), std::nullopt, unused);
  BagPrediction prediction;
  const auto probabilities = torch::softmax(out.logits.to(torch::kCPU, torch::kDouble), 0).contiguous();
  prediction.probabilities.assign(probabilities.data_ptr<double>(), probabilities.data_ptr<double>() + probabilities.numel());
  if (out.attention.defined()) {
    const auto attention = out.attention.to(torch::kCPU, torch::kFloat).contiguous();
    prediction.attention.assign(attention.data_ptr<float>(), attention.data_ptr<float>() + attention.numel());
  }
  return prediction;
}

}  // namespace histoflow::mil
