#pragma once
// Data parallelism as facebookresearch/dinov2 runs it: every process takes its share of the global batch, computes
// its own images' losses, and the gradients are averaged before the optimiser step, so that W processes with B/W
// images each take the step one process takes with B.
#include <torch/torch.h>

#include <vector>

#include "collectives.hpp"
#include "ssl_model.hpp"

namespace histoflow::finetune {

// Images [rank * B/W, (rank + 1) * B/W) of a global batch of B images, from every crop block (crop-major rows), with
// their masks re-indexed. B must divide by W.
SslBatch rank_share(const SslBatch& global, int rank, int world);

// Replaces each defined gradient with its mean over the processes (one all-reduce of them all).
void average_gradients(const std::vector<torch::Tensor>& parameters, Collectives& collectives);

}  // namespace histoflow::finetune
