#pragma once
// Trains one aggregator: AdamW, one bag per step, class-weighted cross-entropy, random tile subsampling of
// large training bags, early stopping on the validation loss with the best epoch's weights kept.
// Deterministic for a seed: every random draw (initialisation, order, subsampling, dropout) comes from
// generators owned by this call, never LibTorch's global one.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bag.hpp"
#include "histoflow/mil/aggregator.hpp"

namespace histoflow::mil {

struct TrainingOptions {
  std::string aggregator = "gated_attention";
  AggregatorOptions model;
  double learning_rate = 1e-4;
  double weight_decay = 1e-2;
  int epochs = 30;
  int patience = 5;                  // epochs without a lower validation loss before stopping
  // Tiles drawn at random (seeded) from a training bag at each step; 0 = all. Memory is linear in the tiles either
  // way (blocked attention, large layers recomputed in backward); the time of the transformer's attention is not.
  std::int64_t max_tiles = 512;
  bool class_weighting = true;       // weights n / (classes * n_c) over the training bags
  bool standardize = true;           // z-score features with the training tiles' mean and sd
  torch::Device device = torch::kCPU;
  std::function<void(int epoch)> on_epoch;  // after each epoch (1-based), validation included; may be empty
  std::function<void()> on_step;  // before each bag's step, validation included; may throw to stop; may be empty
};

struct TrainedModel {
  std::shared_ptr<Aggregator> model;  // in eval mode, on the training device
  torch::Tensor input_mean, input_std;  // [D] on the CPU; undefined without standardisation
  int best_epoch = 0;                 // 1-based; the weights kept
  int epochs_run = 0;
  std::vector<double> train_loss;       // per epoch
  std::vector<double> validation_loss;  // per epoch; empty without validation bags
};

TrainedModel train_aggregator(const std::vector<const Bag*>& train, const std::vector<const Bag*>& validation,
                              const TrainingOptions& options, std::uint64_t seed);

struct BagPrediction {
  std::vector<double> probabilities;  // softmax, [classes]
  std::vector<float> attention;       // [N] for attention aggregators, else empty
};

BagPrediction predict_bag(const TrainedModel& trained, const Bag& bag, torch::Device device);

// The features as the model takes them: standardised with its input statistics (when it has them), on `device`.
torch::Tensor standardized(const TrainedModel& model, const torch::Tensor& features, torch::Device device);

// One step of train_aggregator on one bag: at most options.max_tiles of its tiles drawn (seeded), standardised,
// forward, class-weighted loss, backward, optimizer step. Returns the loss. (Also what tools/bench times.)
double train_on_bag(TrainedModel& model, torch::optim::Optimizer& optimizer, const Bag& bag,
                    const std::vector<double>& class_weights, const TrainingOptions& options, torch::Generator& generator);

// The class weights used for `bags` (all 1 when not weighting); classes without bags weigh 0.
std::vector<double> class_weights(const std::vector<const Bag*>& bags, std::int64_t classes, bool balanced);

}  // namespace histoflow::mil
