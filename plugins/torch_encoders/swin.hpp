#pragma once
// Swin Transformers with CTransPath's convolutional stem, in the key layout of the published ctranspath.pth
// (timm 0.5.4): patch_embed.proj.{0,1,3,4,6}, patch_embed.norm, layers.I.blocks.J.{norm1,
// attn.relative_position_bias_table, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, layers.I.downsample.{norm,
// reduction} merging at the END of stage I, norm. The output is the mean of the final normed feature map.
#include <vector>

#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::torch_encoders {

struct SwinConfig {
  int img_size = 224;            // the only input size: windows, shifts and masks are laid out for its grids
  int embed_dim = 96;            // a multiple of 8: the stem widens 3 -> E/8 -> E/4 -> E
  std::vector<int> depths{2, 2, 6, 2};
  std::vector<int> heads{3, 6, 12, 24};
  int window = 7;
  double mlp_ratio = 4.0;
};

std::unique_ptr<Backbone> make_swin(const SwinConfig& config);

// What the model computes rather than learns, under the names timm 0.5.4 saves them with
// (layers.I.blocks.J.attn.relative_position_index, layers.I.blocks.J.attn_mask for shifted blocks).
// Checkpoints that carry them must hold exactly these values.
std::map<std::string, torch::Tensor> swin_computed_buffers(const SwinConfig& config);

}  // namespace histoflow::torch_encoders
