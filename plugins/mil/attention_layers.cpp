#include "attention_layers.hpp"

#include <cmath>

namespace histoflow::mil {

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
  const std::int64_t tokens = x.size(0), dim = x.size(1), head_dim = dim / heads;
  auto q_k_v = qkv(norm1(x)).view({tokens, 3, heads, head_dim}).permute({1, 2, 0, 3});  // [3, H, T, d]
  auto q = q_k_v[0], k = q_k_v[1], v = q_k_v[2];
  auto weights = torch::softmax(torch::matmul(q, k.transpose(1, 2)) / std::sqrt(static_cast<double>(head_dim)), -1);
  if (cls_attention) *cls_attention = weights.select(1, 0).mean(0).detach();  // [T]
  weights = seeded_dropout(weights, dropout, is_training(), generator);
  auto attended = torch::matmul(weights, v).permute({1, 0, 2}).reshape({tokens, dim});
  auto y = x + seeded_dropout(proj(attended), dropout, is_training(), generator);
  if (!fc1) return y;
  auto m = fc2(seeded_dropout(torch::gelu(fc1(norm2(y))), dropout, is_training(), generator));
  return y + seeded_dropout(m, dropout, is_training(), generator);
}

}  // namespace histoflow::mil
