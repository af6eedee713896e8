#pragma once
// Scaled dot-product attention in memory linear in the tokens (flash-attention style): the weights are
// computed one block of queries × keys at a time with an online softmax, and the backward pass recomputes each
// block from the queries, keys, values, output and log-sum-exp it kept, instead of keeping the [heads, queries,
// keys] weights (8 × N² floats: 80 GB for a 50,000-tile bag). Same result and gradients as the whole
// computation, up to rounding. Uses only tensor operations present in LibTorch 1.13 and 2.x, on any device.
#include <torch/torch.h>

#include <cstdint>

namespace histoflow::mil {

struct AttentionResult {
  torch::Tensor values;        // softmax(scale · q kᵀ) v, with dropout on the weights: [heads, queries, value_dim]
  torch::Tensor log_sum_exp;   // log Σ_j exp(scale · q_i · k_j) per query, [heads, queries]; no gradient
};

struct AttentionBlocks {
  std::int64_t queries = 0, keys = 0;  // 0: chosen from the sizes (about 1 Mi weights, 4 MiB, per block)
};

// q [heads, queries, dim], k [heads, keys, dim], v [heads, keys, value_dim]. `dropout` (the probability of
// dropping a weight, 0 outside training) uses `seed` (attention_dropout.hpp).
AttentionResult blocked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                                  double dropout = 0.0, std::uint64_t seed = 0, AttentionBlocks blocks = {});

// The same with the whole weight matrix held (and kept for backward by autograd): for small inputs.
AttentionResult whole_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                                double dropout = 0.0, std::uint64_t seed = 0);

// whole_attention while the weights take at most 16 Mi values (64 MiB), else blocked_attention.
AttentionResult attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                          double dropout = 0.0, std::uint64_t seed = 0);

// The weights of one query (before dropout) from its log-sum-exp, [heads, keys]: heatmaps read the class
// token's row without the matrix. No gradient.
torch::Tensor attention_weights_of_query(const torch::Tensor& q, const torch::Tensor& k, double scale,
                                         const torch::Tensor& log_sum_exp, std::int64_t query);

}  // namespace histoflow::mil
