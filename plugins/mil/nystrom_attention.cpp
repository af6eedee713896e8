#include "nystrom_attention.hpp"

#include <cmath>

#include "attention_layers.hpp"
#include "blocked_attention.hpp"
#include "recompute_in_backward.hpp"

namespace histoflow::mil {
namespace {
constexpr std::int64_t kResidualKernel = 33;
}  // namespace

NystromAttentionLayerImpl::NystromAttentionLayerImpl(std::int64_t dim, std::int64_t heads_, std::int64_t landmarks_,
                                                     int pinv_iterations_)
    : heads(heads_), landmarks(landmarks_), pinv_iterations(pinv_iterations_) {
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  const std::int64_t inner = heads * (dim / heads);
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * inner).bias(false)));
  out = register_module("out", torch::nn::Linear(inner, dim));
  residual_conv = register_module(
      "residual_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(heads, heads, {kResidualKernel, 1})
                                             .padding({kResidualKernel / 2, 0})
                                             .groups(heads)
                                             .bias(false)));
}

torch::Tensor NystromAttentionLayerImpl::forward(const torch::Tensor& x, double dropout, torch::Generator& generator) {
  if (!recompute_layer_in_backward(*this, x)) return compute(x, dropout, generator);
  return recompute_in_backward(
      [this, dropout](const torch::Tensor& input, torch::Generator& g) { return compute(input, dropout, g); }, x,
      parameters(), generator);
}

torch::Tensor NystromAttentionLayerImpl::compute(const torch::Tensor& x, double dropout, torch::Generator& generator) {
  const std::int64_t tokens = x.size(0), dim = x.size(1), head_dim = dim / heads;
  const std::int64_t padding = (landmarks - tokens % landmarks) % landmarks;
  const std::int64_t padded = tokens + padding, segment = padded / landmarks;
  auto h = norm(x);
  if (padding > 0) h = torch::cat({torch::zeros({padding, dim}, h.options()), h});
  const auto q_k_v = qkv(h).view({padded, 3, heads, head_dim}).permute({1, 2, 0, 3});  // [3, H, n, d]
  // Contiguous copies: what the attention and the convolution keep for backward, not the whole projection.
  const auto q = (q_k_v[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)))).contiguous();
  const auto k = q_k_v[1].contiguous(), v = q_k_v[2].contiguous();
  const auto q_landmarks = q.view({heads, landmarks, segment, head_dim}).mean(2);
  const auto k_landmarks = k.view({heads, landmarks, segment, head_dim}).mean(2);
  // (softmax(q k̃ᵀ) pinv(softmax(q̃ k̃ᵀ))) (softmax(q̃ kᵀ) v), the first product taken last: every factor is a
  // softmax attention over landmarks or of landmarks, computed in blocks when large.
  const auto inverse = iterative_pseudo_inverse(torch::softmax(torch::matmul(q_landmarks, k_landmarks.transpose(1, 2)), -1),
                                                pinv_iterations);
  const auto landmark_values = attention(q_landmarks, k, v, 1.0).values;                        // [H, m, d]
  auto attended = attention(q, k_landmarks, torch::matmul(inverse, landmark_values), 1.0).values;  // [H, n, d]
  attended = attended + residual_conv(v.unsqueeze(0)).squeeze(0);
  attended = attended.permute({1, 0, 2}).reshape({padded, heads * head_dim}).slice(0, padding);
  return x + seeded_dropout(out(attended), dropout, is_training(), generator);
}

torch::Tensor iterative_pseudo_inverse(const torch::Tensor& x, int iterations) {
  const auto magnitude = x.abs();
  auto z = x.transpose(-1, -2) / (magnitude.sum(-1).max() * magnitude.sum(-2).max());
  const auto identity = torch::eye(x.size(-1), x.options()).unsqueeze(0);
  for (int i = 0; i < iterations; ++i) {
    const auto xz = torch::matmul(x, z);
    z = 0.25 * torch::matmul(z, 13 * identity - torch::matmul(xz, 15 * identity - torch::matmul(xz, 7 * identity - xz)));
  }
  return z;
}

}  // namespace histoflow::mil
