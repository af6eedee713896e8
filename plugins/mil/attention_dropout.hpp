#pragma once
// Dropout on attention weights without a stored mask. Whether weight (head h, query i, key j) is kept is a
// hash of (seed, h, i, j) (counter-based, like flash attention's RNG): any block of the [heads, queries, keys]
// weights gets its part of one and the same mask, in the forward pass and again when the backward pass
// recomputes the block, whatever the block sizes. A mask drawn from a generator would have to be kept (heads ×
// N² values) or drawn in the same order again.
#include <torch/torch.h>

#include <cstdint>

namespace histoflow::mil {

// A fresh seed from the trainer's generator (CPU), one per attention call.
std::uint64_t draw_attention_seed(torch::Generator& generator);

// The part of the mask that starts at query `first_query` and key `first_key`, [heads, queries, keys]: 0 where a
// weight is dropped (probability p < 1), 1 / (1 - p) where it is kept. Hashed on the CPU (the same numbers for
// any device), returned with `options` (dtype float or double, device).
torch::Tensor attention_dropout_mask(std::int64_t heads, std::int64_t queries, std::int64_t keys, std::uint64_t seed,
                                     double p, std::int64_t first_query = 0, std::int64_t first_key = 0,
                                     const torch::TensorOptions& options = {});

}  // namespace histoflow::mil
