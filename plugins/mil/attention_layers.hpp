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

// x + Attention(LayerNorm(x)) [+ x + MLP(LayerNorm(x)) when mlp_dim > 0]; x is [T, dim].
struct SelfAttentionLayerImpl : torch::nn::Module {
  SelfAttentionLayerImpl(std::int64_t dim, std::int64_t heads, std::int64_t mlp_dim);
  // `cls_attention`, when given, receives the attention of token 0 to every token, averaged over heads, [T].
  torch::Tensor forward(const torch::Tensor& x, double dropout, torch::Generator& generator,
                        torch::Tensor* cls_attention = nullptr);
  std::int64_t heads;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SelfAttentionLayer);

}  // namespace histoflow::mil
