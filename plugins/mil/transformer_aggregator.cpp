// The transformer aggregator used for MSI prediction (Wagner et al. 2023): tiles projected to width
// hidden_dim (512), a class token, 2 pre-norm layers with 8 heads and an MLP of the same width, a final
// LayerNorm, a linear head on the class token. Its "attention" is the last layer's class-token attention
// to each tile, averaged over heads.
#include "attention_layers.hpp"
#include "builtin_aggregators.hpp"

namespace histoflow::mil {
namespace {

class TransformerAggregator final : public Aggregator {
 public:
  explicit TransformerAggregator(const AggregatorOptions& o) : dropout_(o.dropout) {
    const auto d = o.hidden_dim;
    project_ = register_module("project", torch::nn::Linear(o.input_dim, d));
    cls_token_ = register_parameter("cls_token", torch::zeros({1, d}));
    for (int i = 0; i < 2; ++i) layers_.push_back(register_module("layer" + std::to_string(i), SelfAttentionLayer(d, 8, d)));
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    classifier_ = register_module("classifier", torch::nn::Linear(d, o.classes));
  }

  AggregatorOutput forward(const torch::Tensor& bag, std::optional<std::int64_t>, torch::Generator& generator) override {
    auto x = torch::cat({cls_token_, torch::relu(project_(bag))});
    torch::Tensor cls_attention;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      x = layers_[i]->forward(x, dropout_, generator, i + 1 == layers_.size() ? &cls_attention : nullptr);
    auto tiles = cls_attention.slice(0, 1);
    return {classifier_(norm_(x.slice(0, 0, 1))).squeeze(0), tiles / tiles.sum(), {}};
  }

 private:
  double dropout_;
  torch::nn::Linear project_{nullptr}, classifier_{nullptr};
  torch::Tensor cls_token_;
  std::vector<SelfAttentionLayer> layers_;
  torch::nn::LayerNorm norm_{nullptr};
};

}  // namespace

std::shared_ptr<Aggregator> make_transformer(const AggregatorOptions& options) {
  return std::make_shared<TransformerAggregator>(options);
}

}  // namespace histoflow::mil
