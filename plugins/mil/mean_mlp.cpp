// Mean pooling + MLP: the baseline every attention model should beat.
#include "builtin_aggregators.hpp"

namespace histoflow::mil {
namespace {

class MeanMlp final : public Aggregator {
 public:
  explicit MeanMlp(const AggregatorOptions& o) : dropout_(o.dropout) {
    hidden_ = register_module("hidden", torch::nn::Linear(o.input_dim, o.hidden_dim));
    classifier_ = register_module("classifier", torch::nn::Linear(o.hidden_dim, o.classes));
  }
  AggregatorOutput forward(const torch::Tensor& bag, std::optional<std::int64_t>, torch::Generator& generator) override {
    auto h = torch::relu(hidden_(bag.mean(0, /*keepdim=*/true)));
    h = seeded_dropout(h, dropout_, is_training(), generator);
    return {classifier_(h).squeeze(0), {}, {}};
  }

 private:
  double dropout_;
  torch::nn::Linear hidden_{nullptr}, classifier_{nullptr};
};

}  // namespace

std::shared_ptr<Aggregator> make_mean_mlp(const AggregatorOptions& options) { return std::make_shared<MeanMlp>(options); }

}  // namespace histoflow::mil
