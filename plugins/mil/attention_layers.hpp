#pragma once
// Building blocks the aggregators share: gated attention pooling (Ilse et al.) and a pre-norm
// self-attention layer that also reports the class token's attention (for heatmaps).
#include "histoflow/mil/aggregator.hpp"

namespace histoflow::mil {

// a_i = w^T (tanh(V h_i) * sigmoid(U h_i)); returns softmax(a) over the tiles, [N].
struct GatedAttentionImpl : torch::nn::Module {
  GatedAttentionImpl(std::int64_t dim, std::int64_t attention_dim);
  torch::Tensor forward(const torch::Tensor& h, double dropout, torch::Generator& generator);
  torch::nn::Linear v{nullptr}, u{nullptr}, w{nullptr};
};
TORCH_MODULE(GatedAttention);

// x + Attention(LayerNorm(x)) [+ x + MLP(LayerNorm(x)) when mlp_dim > 0]; x is [T, dim]. Memory linear in T:
// above 16 Mi attention weights the attention is computed in blocks (blocked_attention.hpp), and a training
// step on more than 4 Mi activation values per tensor (T × dim) recomputes the layer in the backward pass
// (recompute_in_backward.hpp).
struct SelfAttentionLayerImpl : torch::nn::Module {
  SelfAttentionLayerImpl(std::int64_t dim, std::int64_t heads, std::int64_t mlp_dim);
  // `cls_attention`, when given, receives the attention of token 0 to every token, averaged over heads, [T].
  torch::Tensor forward(const torch::Tensor& x, double dropout, torch::Generator& generator,
                        torch::Tensor* cls_attention = nullptr);
  std::int64_t heads;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};

 private:
  torch::Tensor compute(const torch::Tensor& x, double dropout, torch::Generator& generator, torch::Tensor* cls_attention);
};
TORCH_MODULE(SelfAttentionLayer);

// Whether a training step on `x` recomputes a layer in backward rather than keep its activations.
bool recompute_layer_in_backward(const torch::nn::Module& layer, const torch::Tensor& x);

}  // namespace histoflow::mil
