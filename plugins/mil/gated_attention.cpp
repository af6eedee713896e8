// Gated attention MIL (Ilse, Tomczak, Welling 2018): tiles projected to hidden_dim, weighted by a gated
// attention score, summed, classified. The weights are the heatmap.
#include "attention_layers.hpp"
#include "builtin_aggregators.hpp"

namespace histoflow::mil {
namespace {

class GatedAttentionMil final : public Aggregator {
 public:
  explicit GatedAttentionMil(const AggregatorOptions& o) : dropout_(o.dropout) {
    project_ = register_module("project", torch::nn::Linear(o.input_dim, o.hidden_dim));
    attention_ = register_module("attention", GatedAttention(o.hidden_dim, std::max<std::int64_t>(o.hidden_dim / 4, 16)));
    classifier_ = register_module("classifier", torch::nn::Linear(o.hidden_dim, o.classes));
  }
  AggregatorOutput forward(const torch::Tensor& bag, std::optional<std::int64_t>, torch::Generator& generator) override {
    auto h = seeded_dropout(torch::relu(project_(bag)), dropout_, is_training(), generator);  // [N, H]
    auto a = attention_->forward(h, dropout_, generator);                                     // [N]
    auto pooled = torch::matmul(a.unsqueeze(0), h);                                          // [1, H]
    return {classifier_(pooled).squeeze(0), a, {}};
  }

 private:
  double dropout_;
  torch::nn::Linear project_{nullptr}, classifier_{nullptr};
  GatedAttention attention_{nullptr};
};

}  // namespace

std::shared_ptr<Aggregator> make_gated_attention(const AggregatorOptions& options) {
  return std::make_shared<GatedAttentionMil>(options);
}

}  // namespace histoflow::mil
