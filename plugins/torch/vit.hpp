#pragma once
// Vision transformers with DINOv2's module layout and parameter names (patch_embed.proj, cls_token,
// pos_embed, register_tokens, blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.*,ls2.gamma}, norm).
#include "backbone.hpp"

namespace histoflow::torchenc {

struct VitConfig {
  int img_size = 518;            // the grid the position embeddings were trained for
  int patch_size = 14;
  int dim = 384;
  int depth = 12;
  int heads = 6;
  double mlp_ratio = 4.0;
  bool swiglu = false;           // SwiGLU feed-forward (ViT-g), hidden width rounded as DINOv2 does
  int registers = 0;             // register tokens (the "_reg" models)
  bool layer_scale = true;
  bool interpolate_antialias = false;
  double interpolate_offset = 0.1;  // DINOv2's historical +0.1; 0 for the register models
  double eps = 1e-6;
  // timm's layout (UNI, Virchow2, UNI2-h): reg_token instead of register_tokens, no mask_token, a packed
  // SwiGLU (mlp.fc1 of width int(dim * mlp_ratio), halves gated), and, with no_embed_class, position
  // embeddings for the patches only, added before the class and register tokens are prepended.
  bool timm = false;
  bool swiglu_packed = false;
  bool no_embed_class = false;
};

std::unique_ptr<Backbone> make_vit(const VitConfig& config);
// The position embeddings a ViT backbone adds for an input of this size (for parity tests).
torch::Tensor vit_position_embeddings(Backbone& vit, std::int64_t height, std::int64_t width);
int swiglu_hidden_width(int dim, double mlp_ratio);

}  // namespace histoflow::torchenc
