#pragma once
// Vision transformers with DINOv2's module layout and parameter names (patch_embed.proj, cls_token,
// pos_embed, register_tokens, blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.*,ls2.gamma}, norm).
#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::torch_encoders {

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
  // timm's layout (UNI, Virchow2, UNI2-h): reg_token instead of register_tokens, no mask_token, and a packed
  // SwiGLU (mlp.fc1 of width int(dim * mlp_ratio), halves gated).
  bool timm = false;
  bool swiglu_packed = false;
  // How many of the leading tokens [cls, registers...] carry a position embedding (pos_embed holds these rows,
  // then the patch grid; interpolation keeps them as they are): 1 for DINOv2 (registers are inserted after the
  // embeddings are added) and for timm's default without registers; 1 + registers for timm's default with
  // reg_tokens (Virchow2); 0 for timm's no_embed_class (UNI2-h: patches only).
  int position_prefix_tokens = 1;
};

// How a position embedding is brought to a new square grid once, before training at another crop size.
enum class PositionResize {
  Bicubic,     // bicubic interpolation with the scale factor grid/trained, no antialias (the study's fork)
  CenterCrop,  // the central grid x grid embeddings (the fork's alternative, get_downloaded_dino_vit_s)
};
PositionResize parse_position_resize(const std::string& name);  // "bicubic" or "center_crop"; throws otherwise

// What self-supervised training needs from a vision transformer, beyond inference.
class TrainableVit {
 public:
  virtual ~TrainableVit() = default;
  virtual int depth() const = 0;
  virtual int patch_size() const = 0;
  virtual int dim() const = 0;
  virtual int position_grid() const = 0;  // the square grid the position embedding holds
  virtual bool has_mask_token() const = 0;
  // Layouts without one (timm's) get a zero-initialised [1, D] mask token, as DINOv2 initialises its own.
  virtual void add_mask_token() = 0;
  virtual void resize_position_grid(int grid, PositionResize method) = 0;
  // Differentiable forward. masks: [B, N] bool, masked patch embeddings replaced by the mask token (undefined:
  // none). drop_path: one rate per block (empty: none); a block drops whole samples' residual branches as
  // DINOv2's training path does (a random subset of int(B(1-rate)) samples computes the branch, which is added
  // scaled by B/subset), drawn from `generator`. compute: kFloat or kBFloat16 (parameters stay fp32; products
  // run in the compute type, norms and softmax in fp32). Under NoGradGuard with no masks, no drop path and
  // parameters already in the compute type this takes the inference path.
  // Returns cls [B, D] and patch_tokens [B, N, D] after the final norm (register tokens excluded).
  virtual BackboneOutput forward_tokens(const torch::Tensor& images, const torch::Tensor& masks, const std::vector<double>& drop_path,
                                   torch::Generator* generator, torch::Dtype compute) = 0;
};

// While one is alive on this thread, cast_parameter casts each parameter to a type once and hands back the same
// copy after (as autocast's weight cache does): a training step in bf16 uses every weight for the global and the
// local crops, and backward then converts one gradient per weight instead of one per use.
class ParameterCastCache {
 public:
  ParameterCastCache();
  ~ParameterCastCache();
  ParameterCastCache(const ParameterCastCache&) = delete;
  ParameterCastCache& operator=(const ParameterCastCache&) = delete;
};
// p in `type` (p itself when it already is; differentiable), through the cache when one is alive.
torch::Tensor cast_parameter(const torch::Tensor& p, torch::ScalarType type);

std::unique_ptr<Backbone> make_vit(const VitConfig& config);
// The position embeddings a ViT backbone adds for an input of this size (for parity tests).
torch::Tensor vit_position_embeddings(Backbone& vit, std::int64_t height, std::int64_t width);
int swiglu_hidden_width(int dim, double mlp_ratio);

}  // namespace histoflow::torch_encoders
