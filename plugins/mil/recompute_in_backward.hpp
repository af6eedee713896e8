#pragma once
// Activation recomputation (gradient checkpointing) for one layer: the forward pass keeps only the layer's
// input; the backward pass runs the layer again, from the generator as it was at the first run (the same
// dropout), and backpropagates through that run. Training on a whole 50,000-tile bag then holds one layer's
// activations at a time instead of every layer's (about 15 tensors of N × width each).
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace histoflow::mil {

using RecomputableLayer = std::function<torch::Tensor(const torch::Tensor& input, torch::Generator& generator)>;

// Gradients reach `input` and `parameters` (the layer's, which it must use and nothing else that needs a
// gradient). `generator` advances as if the layer had run once without this.
torch::Tensor recompute_in_backward(RecomputableLayer layer, const torch::Tensor& input,
                                    const std::vector<torch::Tensor>& parameters, torch::Generator& generator);

}  // namespace histoflow::mil
