#pragma once
// MIL aggregators: a torch module that turns one bag of tile features [N, D] into class logits, and the
// registry that names them. The built-in five register themselves; a plugin adds another by calling
// register_aggregator from its registration function (it links libhistoflow_mil, as backbone plugins link
// libhistoflow_torch_encoders).
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace histoflow::mil {

struct AggregatorOutput {
  torch::Tensor logits;          // [C]
  torch::Tensor attention;       // [N] tile weights (sum 1) for attention aggregators; undefined otherwise
  torch::Tensor auxiliary_loss;  // scalar added to the bag loss in training (CLAM's instance loss); or undefined
};

struct AggregatorOptions {
  std::int64_t input_dim = 0;
  std::int64_t classes = 2;
  std::int64_t hidden_dim = 512;
  double dropout = 0.25;
};

// Dropout that draws from the trainer's generator rather than LibTorch's global one, so that two stages
// training at once in one process stay reproducible.
torch::Tensor seeded_dropout(const torch::Tensor& x, double p, bool training, torch::Generator& generator);

class Aggregator : public torch::nn::Module {
 public:
  // `label` is given while training (CLAM uses it for its instance loss); `generator` drives dropout.
  virtual AggregatorOutput forward(const torch::Tensor& bag, std::optional<std::int64_t> label,
                                   torch::Generator& generator) = 0;
};

struct AggregatorSpec {
  std::string name;
  std::string description;
  bool has_attention = false;  // forward() returns per-tile attention (heatmaps)
  std::function<std::shared_ptr<Aggregator>(const AggregatorOptions&)> create;
};

void register_aggregator(AggregatorSpec spec);                  // throws when the name is taken
const AggregatorSpec& find_aggregator(const std::string& name);  // throws listing the known names
std::vector<std::string> aggregator_names();

// Deterministic initialisation from `generator`: Kaiming-uniform weights (as nn.Linear), zero biases,
// LayerNorm weight 1; other parameters (tokens) normal with std 0.02.
void initialise_parameters(torch::nn::Module& module, torch::Generator& generator);

}  // namespace histoflow::mil
