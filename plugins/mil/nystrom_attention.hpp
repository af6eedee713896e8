#pragma once
// TransMIL's attention layer, x + NystromAttention(LayerNorm(x)), as TransMIL uses lucidrains'
// nystrom-attention (Xiong et al. 2021): `heads` heads of width dim / heads, `landmarks` landmarks (the means of
// consecutive segments of the queries and of the keys; tokens zero-padded in front to a multiple of them), the
// Moore-Penrose pseudo-inverse by `pinv_iterations` iterations, a depthwise convolution of the values (33 taps
// along the tokens) added as a residual, no bias on the q/k/v projection, dropout after the output projection.
// Its softmaxes are [tokens × landmarks] and [landmarks × tokens]: memory and time linear in the tokens.
#include "histoflow/mil/aggregator.hpp"

namespace histoflow::mil {

struct NystromAttentionLayerImpl : torch::nn::Module {
  NystromAttentionLayerImpl(std::int64_t dim, std::int64_t heads, std::int64_t landmarks, int pinv_iterations = 6);
  torch::Tensor forward(const torch::Tensor& x, double dropout, torch::Generator& generator);  // x [T, dim]
  std::int64_t heads, landmarks;
  int pinv_iterations;
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear qkv{nullptr}, out{nullptr};
  torch::nn::Conv2d residual_conv{nullptr};

 private:
  torch::Tensor compute(const torch::Tensor& x, double dropout, torch::Generator& generator);
};
TORCH_MODULE(NystromAttentionLayer);

// nystrom-attention's iterative pseudo-inverse of a batch of square matrices [B, m, m].
torch::Tensor iterative_pseudo_inverse(const torch::Tensor& x, int iterations);

}  // namespace histoflow::mil
