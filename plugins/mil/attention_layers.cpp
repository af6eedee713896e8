#include "attention_layers.hpp"

#include <cmath>

#include "attention_dropout.hpp"
#include "blocked_attention.hpp"
#include "recompute_in_backward.hpp"

namespace histoflow::mil {
namespace {
// A layer keeps about 15 tensors of its input's size for backward: above 4 Mi values each (16 MiB; 8,192
// tokens of width 512) it recomputes them instead.
constexpr std::int64_t kRecomputeAbove = std::int64_t{1} << 22;
}  // namespace

bool recompute_layer_in_backward(const torch::nn::Module& layer, const torch::Tensor& x) {
  return layer.is_training() && torch::GradMode::is_enabled() && x.numel() > kRecomputeAbove;
}

GatedAttentionImpl::GatedAttentionImpl(std::int64_t dim, std::int64_t attention_dim) {
  v = register_module("v", torch::nn::Linear(dim, attention_dim));
  u = register_module("u", torch::nn::Linear(dim, attention_dim));
  w = register_module("w", torch::nn::Linear(attention_dim, 1));
}

torch::Tensor GatedAttentionImpl::forward(const torch::Tensor& h, double dropout, torch::Generator& generator) {
  auto gate = torch::tanh(v(h)) * torch::sigmoid(u(h));
  gate = seeded_dropout(gate, dropout, is_training(), generator);
  return torch::softmax(w(gate).squeeze(1), 0);
}

SelfAttentionLayerImpl::SelfAttentionLayerImpl(std::int64_t dim, std::int64_t heads_, std::int64_t mlp_dim) : heads(heads_) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  if (mlp_dim > 0) {
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    fc1 = register_module("fc1", torch::nn::Linear(dim, mlp_dim));
    fc2 = register_module("fc2", torch::nn::Linear(mlp_dim, dim));
  }
}

torch::Tensor SelfAttentionLayerImpl::forward(const torch::Tensor& x, double dropout, torch::Generator& generator,
                                              torch::Tensor* cls_attention) {
  if (!recompute_layer_in_backward(*this, x)) return compute(x, dropout, generator, cls_attention);
  // The class token's attention comes from the first run; the rerun in backward needs none.
  return recompute_in_backward(
      [this, dropout, cls_attention](const torch::Tensor& input, torch::Generator& g) mutable {
        auto y = compute(input, dropout, g, cls_attention);
        cls_attention = nullptr;
        return y;
      },
      x, parameters(), generator);
}

torch::Tensor SelfAttentionLayerImpl::compute(const torch::Tensor& x, double dropout, torch::Generator& generator,
                                              torch::Tensor* cls_attention) {
  const std::int64_t tokens = x.size(0), dim = x.size(1), head_dim = dim / heads;
  auto q_k_v = qkv(norm1(x)).view({tokens, 3, heads, head_dim}).permute({1, 2, 0, 3});  // [3, H, T, d]
  const auto q = q_k_v[0], k = q_k_v[1], v = q_k_v[2];
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const double attention_dropout = is_training() ? dropout : 0.0;
  const std::uint64_t seed = attention_dropout > 0 ? draw_attention_seed(generator) : 0;
  // Whole weights for small bags; blocks above 16 Mi weights (a 10,000-tile bag's whole weights take 3.2 GB),
  // with the same result and gradients.
  const auto attended = attention(q, k, v, scale, attention_dropout, seed);
  if (cls_attention)
    *cls_attention = attention_weights_of_query(q, k, scale, attended.log_sum_exp, 0).mean(0);  // [T]
  auto y = x + seeded_dropout(proj(attended.values.permute({1, 0, 2}).reshape({tokens, dim})), dropout, is_training(),
                              generator);
  if (!fc1) return y;
  auto m = fc2(seeded_dropout(torch::gelu(fc1(norm2(y))), dropout, is_training(), generator));
  return y + seeded_dropout(m, dropout, is_training(), generator);
}

}  // namespace histoflow::mil
