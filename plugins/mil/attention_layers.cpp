#include "attention_layers.hpp"

#include <algorithm>
#include <cmath>

namespace histoflow::mil {
namespace {
// Scoring a bag whose [heads, T, T] attention exceeds 16 Mi floats (64 MiB) goes in blocks of queries of at
// most 1 Mi weights (4 MiB): small enough to stay in cache and to be reused by malloc rather than mapped and
// faulted in anew for every block.
constexpr std::int64_t kWholeAttentionLimit = std::int64_t{1} << 24;
constexpr std::int64_t kAttentionBlockElements = std::int64_t{1} << 20;
}  // namespace

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
  const double root = std::sqrt(static_cast<double>(head_dim));
  torch::Tensor attended;
  if (!is_training() && heads * tokens * tokens > kWholeAttentionLimit) {
    // Inference on a large bag (validation, test, external): the full [H, T, T] weights of a 10,000-tile bag
    // take 3.2 GB, several times over with the temporaries. Each query row's softmax needs only its own
    // scores, so blocks of queries give the same result in bounded memory. (Nothing is stored for a backward
    // pass in eval mode; training bags are bounded by the trainer's max_tiles instead.)
    const std::int64_t block = std::max<std::int64_t>(1, kAttentionBlockElements / (heads * tokens));
    const auto keys = k.transpose(1, 2).contiguous(), values = v.contiguous();  // once, not per block
    std::vector<torch::Tensor> parts;
    for (std::int64_t q0 = 0; q0 < tokens; q0 += block) {
      auto scores = torch::matmul(q.slice(1, q0, q0 + block), keys);  // [H, b, T]
      const auto w = torch::softmax(scores.div_(root), -1);
      if (cls_attention && q0 == 0) *cls_attention = w.select(1, 0).mean(0).detach();  // [T]
      parts.push_back(torch::matmul(w, values));  // no dropout: not training
    }
    attended = torch::cat(parts, 1).permute({1, 0, 2}).reshape({tokens, dim});
  } else {
    auto weights = torch::softmax(torch::matmul(q, k.transpose(1, 2)) / root, -1);
    if (cls_attention) *cls_attention = weights.select(1, 0).mean(0).detach();  // [T]
    weights = seeded_dropout(weights, dropout, is_training(), generator);
    attended = torch::matmul(weights, v).permute({1, 0, 2}).reshape({tokens, dim});
  }
  auto y = x + seeded_dropout(proj(attended), dropout, is_training(), generator);
  if (!fc1) return y;
  auto m = fc2(seeded_dropout(torch::gelu(fc1(norm2(y))), dropout, is_training(), generator));
  return y + seeded_dropout(m, dropout, is_training(), generator);
}

}  // namespace histoflow::mil
