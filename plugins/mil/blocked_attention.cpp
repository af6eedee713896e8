#include "blocked_attention.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "attention_dropout.hpp"

namespace histoflow::mil {
namespace {

constexpr std::int64_t kWholeAttentionLimit = std::int64_t{1} << 24;
// Weights per block: small enough to stay in cache and to be reused by malloc rather than mapped and faulted in
// anew for every block; large enough that the matrix products, not the per-block overhead, take the time.
constexpr std::int64_t kBlockWeights = std::int64_t{1} << 20;
constexpr std::int64_t kKeyBlock = 1024;

void check_shapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const bool ok = q.dim() == 3 && k.dim() == 3 && v.dim() == 3 && q.size(0) == k.size(0) && k.size(0) == v.size(0) &&
                  q.size(2) == k.size(2) && k.size(1) == v.size(1) && k.size(1) > 0;
  if (!ok)
    throw std::invalid_argument("attention needs q [heads, queries, dim], k [heads, keys, dim], v [heads, keys, value_dim] "
                                "with at least one key; got " + std::to_string(q.dim()) + "-, " + std::to_string(k.dim()) +
                                "- and " + std::to_string(v.dim()) + "-dimensional tensors");
}

AttentionBlocks resolve(AttentionBlocks blocks, std::int64_t heads, std::int64_t queries, std::int64_t keys) {
  if (blocks.keys <= 0) blocks.keys = std::min(keys, kKeyBlock);
  if (blocks.queries <= 0) blocks.queries = std::clamp<std::int64_t>(kBlockWeights / (heads * blocks.keys), 1, queries);
  blocks.keys = std::min(blocks.keys, keys);
  blocks.queries = std::max<std::int64_t>(1, std::min(blocks.queries, queries));
  return blocks;
}

// Saved for backward: q, k, v (contiguous), the output and the log-sum-exp; nothing of size queries × keys.
struct BlockedAttentionFunction : torch::autograd::Function<BlockedAttentionFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q_in,
                                                const torch::Tensor& k_in, const torch::Tensor& v_in, double scale,
                                                double dropout, std::int64_t seed, std::int64_t query_block,
                                                std::int64_t key_block) {
    const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const std::int64_t heads = q.size(0), queries = q.size(1), keys = k.size(1);
    auto out = torch::empty({heads, queries, v.size(2)}, v.options());
    auto log_sum_exp = torch::empty({heads, queries}, q.options());
    for (std::int64_t q0 = 0; q0 < queries; q0 += query_block) {
      const std::int64_t q1 = std::min(queries, q0 + query_block);
      const auto scaled_q = q.slice(1, q0, q1) * scale;
      torch::Tensor running_max, running_sum, accumulated;  // [H, b, 1], [H, b, 1], [H, b, dv]
      for (std::int64_t k0 = 0; k0 < keys; k0 += key_block) {
        const std::int64_t k1 = std::min(keys, k0 + key_block);
        auto weights = torch::bmm(scaled_q, k.slice(1, k0, k1).transpose(1, 2));  // scores, then exp(scores - max)
        const auto block_max = weights.amax(-1, /*keepdim=*/true);
        const auto new_max = running_max.defined() ? torch::maximum(running_max, block_max) : block_max;
        weights.sub_(new_max).exp_();
        const auto block_sum = weights.sum(-1, /*keepdim=*/true);  // before dropout: softmax normalises the weights
        if (dropout > 0)
          weights.mul_(attention_dropout_mask(heads, q1 - q0, k1 - k0, static_cast<std::uint64_t>(seed), dropout, q0, k0,
                                              weights.options()));
        const auto block_values = torch::bmm(weights, v.slice(1, k0, k1));
        if (!running_max.defined()) {
          running_sum = block_sum;
          accumulated = block_values;
        } else {
          const auto rescale = (running_max - new_max).exp_();  // earlier blocks were scaled by the older maximum
          running_sum = running_sum * rescale + block_sum;
          accumulated = accumulated * rescale + block_values;
        }
        running_max = new_max;
      }
      out.slice(1, q0, q1).copy_(accumulated / running_sum);
      log_sum_exp.slice(1, q0, q1).copy_((running_max + running_sum.log()).squeeze(-1));
    }
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["dropout"] = dropout;
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["query_block"] = query_block;
    ctx->saved_data["key_block"] = key_block;
    ctx->save_for_backward({q, k, v, out, log_sum_exp});
    ctx->mark_non_differentiable({log_sum_exp});
    ctx->set_materialize_grads(false);
    return {out, log_sum_exp};
  }

  // With P the weights, Z the dropout mask (scaled), O = (P∘Z) V and D_i = Σ_j (dO∘O)_ij:
  // dV = (P∘Z)ᵀ dO, dP = (dO Vᵀ)∘Z, dS = P∘(dP - D), dQ = scale · dS K, dK = scale · dSᵀ Q.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list none(8);
    if (!grads[0].defined()) return none;
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &log_sum_exp = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble(), dropout = ctx->saved_data["dropout"].toDouble();
    const auto seed = static_cast<std::uint64_t>(ctx->saved_data["seed"].toInt());
    const std::int64_t query_block = ctx->saved_data["query_block"].toInt(), key_block = ctx->saved_data["key_block"].toInt();
    const std::int64_t queries = q.size(1), keys = k.size(1);
    const auto d_out = grads[0].contiguous();
    const auto row_dot = (d_out * out).sum(-1, /*keepdim=*/true);  // D, [H, queries, 1]
    auto d_q = torch::zeros_like(q), d_k = torch::zeros_like(k), d_v = torch::zeros_like(v);
    for (std::int64_t q0 = 0; q0 < queries; q0 += query_block) {
      const std::int64_t q1 = std::min(queries, q0 + query_block);
      const auto scaled_q = q.slice(1, q0, q1) * scale;
      const auto d_out_block = d_out.slice(1, q0, q1);
      const auto lse_block = log_sum_exp.slice(1, q0, q1).unsqueeze(-1);
      const auto row_dot_block = row_dot.slice(1, q0, q1);
      auto d_q_block = d_q.slice(1, q0, q1);
      for (std::int64_t k0 = 0; k0 < keys; k0 += key_block) {
        const std::int64_t k1 = std::min(keys, k0 + key_block);
        const auto k_block = k.slice(1, k0, k1), v_block = v.slice(1, k0, k1);
        auto weights = torch::bmm(scaled_q, k_block.transpose(1, 2)).sub_(lse_block).exp_();  // P
        auto d_weights = torch::bmm(d_out_block, v_block.transpose(1, 2));                  // dO Vᵀ
        if (dropout > 0) {
          const auto mask = attention_dropout_mask(q.size(0), q1 - q0, k1 - k0, seed, dropout, q0, k0, weights.options());
          d_v.slice(1, k0, k1).add_(torch::bmm((weights * mask).transpose(1, 2), d_out_block));
          d_weights.mul_(mask);
        } else {
          d_v.slice(1, k0, k1).add_(torch::bmm(weights.transpose(1, 2), d_out_block));
        }
        const auto d_scores = d_weights.sub_(row_dot_block).mul_(weights);
        d_q_block.add_(torch::bmm(d_scores, k_block), scale);
        d_k.slice(1, k0, k1).add_(torch::bmm(d_scores.transpose(1, 2), scaled_q));
      }
    }
    return {d_q, d_k, d_v, {}, {}, {}, {}, {}};
  }
};

}  // namespace

AttentionResult blocked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                                  double dropout, std::uint64_t seed, AttentionBlocks blocks) {
  check_shapes(q, k, v);
  blocks = resolve(blocks, q.size(0), q.size(1), k.size(1));
  auto outputs = BlockedAttentionFunction::apply(q, k, v, scale, dropout, static_cast<std::int64_t>(seed), blocks.queries,
                                                 blocks.keys);
  return {outputs[0], outputs[1]};
}

AttentionResult whole_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                                double dropout, std::uint64_t seed) {
  check_shapes(q, k, v);
  const auto scores = torch::matmul(q, k.transpose(1, 2)) * scale;
  auto weights = torch::softmax(scores, -1);
  if (dropout > 0)
    weights = weights * attention_dropout_mask(q.size(0), q.size(1), k.size(1), seed, dropout, 0, 0, weights.options());
  torch::Tensor log_sum_exp;
  {
    torch::NoGradGuard no_grad;
    log_sum_exp = scores.logsumexp(-1);
  }
  return {torch::matmul(weights, v), log_sum_exp};
}

AttentionResult attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                          double dropout, std::uint64_t seed) {
  check_shapes(q, k, v);
  if (q.size(0) * q.size(1) * k.size(1) <= kWholeAttentionLimit) return whole_attention(q, k, v, scale, dropout, seed);
  return blocked_attention(q, k, v, scale, dropout, seed);
}

torch::Tensor attention_weights_of_query(const torch::Tensor& q, const torch::Tensor& k, double scale,
                                         const torch::Tensor& log_sum_exp, std::int64_t query) {
  torch::NoGradGuard no_grad;
  const auto scores = torch::bmm(q.slice(1, query, query + 1), k.transpose(1, 2)).squeeze(1) * scale;  // [H, keys]
  return (scores - log_sum_exp.select(1, query).unsqueeze(-1)).exp();
}

}  // namespace histoflow::mil
