// CLAM single-branch (Lu et al. 2021): gated attention pooling plus, in training, an instance-level
// clustering loss: the k most attended tiles of a bag are pushed towards "evidence of its class", the k
// least attended away from it, by a per-class instance classifier (k = 8, bag weight 0.7, as in CLAM).
#include "attention_layers.hpp"
#include "builtin_aggregators.hpp"

namespace histoflow::mil {
namespace {

constexpr std::int64_t kInstanceSamples = 8;
constexpr double kBagWeight = 0.7;

class ClamSingleBranch final : public Aggregator {
 public:
  explicit ClamSingleBranch(const AggregatorOptions& o) : dropout_(o.dropout) {
    project_ = register_module("project", torch::nn::Linear(o.input_dim, o.hidden_dim));
    attention_ = register_module("attention", GatedAttention(o.hidden_dim, std::max<std::int64_t>(o.hidden_dim / 2, 16)));
    classifier_ = register_module("classifier", torch::nn::Linear(o.hidden_dim, o.classes));
    for (std::int64_t c = 0; c < o.classes; ++c)
      instance_classifiers_.push_back(
          register_module("instance_classifier_" + std::to_string(c), torch::nn::Linear(o.hidden_dim, 2)));
  }

  AggregatorOutput forward(const torch::Tensor& bag, std::optional<std::int64_t> label, torch::Generator& generator) override {
    auto h = seeded_dropout(torch::relu(project_(bag)), dropout_, is_training(), generator);
    auto a = attention_->forward(h, dropout_, generator);
    AggregatorOutput out{classifier_(torch::matmul(a.unsqueeze(0), h)).squeeze(0), a, {}};
    const std::int64_t k = std::min<std::int64_t>(kInstanceSamples, h.size(0) / 2);
    if (is_training() && label && k > 0) {
      const auto top = std::get<1>(torch::topk(a, k, 0, /*largest=*/true));
      const auto bottom = std::get<1>(torch::topk(a, k, 0, /*largest=*/false));
      auto instances = torch::cat({h.index_select(0, top), h.index_select(0, bottom)});
      auto targets = torch::cat({torch::ones({k}, torch::kLong), torch::zeros({k}, torch::kLong)}).to(h.device());
      auto logits = instance_classifiers_[static_cast<std::size_t>(*label)]->forward(instances);
      // The trainer adds this to the bag loss: weights kBagWeight : 1 - kBagWeight, up to a common factor.
      out.auxiliary_loss = torch::cross_entropy_loss(logits, targets) * ((1.0 - kBagWeight) / kBagWeight);
    }
    return out;
  }

 private:
  double dropout_;
  torch::nn::Linear project_{nullptr}, classifier_{nullptr};
  GatedAttention attention_{nullptr};
  std::vector<torch::nn::Linear> instance_classifiers_;
};

}  // namespace

std::shared_ptr<Aggregator> make_clam_sb(const AggregatorOptions& options) { return std::make_shared<ClamSingleBranch>(options); }

}  // namespace histoflow::mil
