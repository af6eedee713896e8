#include "histoflow/torch_encoders/vit.hpp"

#include "histoflow/torch_encoders/cpu_linear.hpp"

#include <cctype>
#include <cmath>
#include <unordered_map>

namespace histoflow::torch_encoders {
namespace F = torch::nn::functional;

namespace {
struct CastCacheState {
  int depth = 0;
  std::unordered_map<const void*, torch::Tensor> casts;  // keyed by the parameter's TensorImpl
};
thread_local CastCacheState cast_cache;
}  // namespace

ParameterCastCache::ParameterCastCache() { ++cast_cache.depth; }
ParameterCastCache::~ParameterCastCache() {
  if (--cast_cache.depth == 0) cast_cache.casts.clear();
}

torch::Tensor cast_parameter(const torch::Tensor& p, torch::ScalarType type) {
  if (!p.defined() || p.scalar_type() == type) return p;
  if (cast_cache.depth == 0) return p.to(type);
  auto& cached = cast_cache.casts[p.unsafeGetTensorImpl()];
  // A cast made without gradient (the teacher's, under NoGradGuard) is not reused where one is needed.
  const bool differentiable = p.requires_grad() && torch::GradMode::is_enabled();
  if (!cached.defined() || cached.scalar_type() != type || cached.requires_grad() != differentiable) cached = p.to(type);
  return cached;
}

int swiglu_hidden_width(int dim, double mlp_ratio) {
  const int hidden = static_cast<int>(dim * mlp_ratio);
  return (hidden * 2 / 3 + 7) / 8 * 8;  // DINOv2's SwiGLUFFNFused rounding
}

namespace {

struct PatchEmbedImpl : torch::nn::Module {
  torch::nn::Conv2d proj{nullptr};
  PatchEmbedImpl(int dim, int patch) {
    proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, dim, patch).stride(patch)));
  }
};
TORCH_MODULE(PatchEmbed);

struct LayerScaleImpl : torch::nn::Module {
  torch::Tensor gamma;
  explicit LayerScaleImpl(int dim) { gamma = register_parameter("gamma", torch::ones({dim})); }
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }
};
TORCH_MODULE(LayerScale);

// Multi-head self-attention from the fused projection qkv [B, N, 3 * C] into [B, N, C]: q, k and v are laid out
// per head in one copy, the scale rides on the first product (no pass over q), and the softmax runs in place on
// the scores (no second [B * H, N, N] buffer). Running the heads on separate threads with single-threaded
// products instead was tried: OpenBLAS (OpenMP build) spins when called from inside a parallel region.
torch::Tensor multi_head_attention(const torch::Tensor& qkv, std::int64_t heads, double scale) {
  const auto batch = qkv.size(0), tokens = qkv.size(1), width = qkv.size(2) / 3, head_dim = width / heads;
  const auto parts = qkv.view({batch, tokens, 3, heads, head_dim}).permute({2, 0, 3, 1, 4}).reshape({3, batch * heads, tokens, head_dim});
  const auto q = parts[0], k = parts[1], v = parts[2];
  auto scores = torch::empty({batch * heads, tokens, tokens}, qkv.options());
  at::baddbmm_out(scores, scores, q, k.transpose(1, 2), /*beta=*/0, /*alpha=*/scale);
  at::_softmax_out(scores, scores, -1, false);
  return torch::bmm(scores, v).view({batch, heads, tokens, head_dim}).transpose(1, 2).reshape({batch, tokens, width});
}

struct AttentionImpl : torch::nn::Module {
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  int heads;
  double scale;
  AttentionImpl(int dim, int heads_) : heads(heads_), scale(1.0 / std::sqrt(static_cast<double>(dim / heads_))) {
    qkv = register_module("qkv", torch::nn::Linear(dim, dim * 3));
    proj = register_module("proj", torch::nn::Linear(dim, dim));
  }
  // Without the output projection: the block adds it straight onto the residual stream.
  torch::Tensor heads_output(const torch::Tensor& x) { return multi_head_attention(linear(x, qkv->weight, qkv->bias), heads, scale); }
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  MlpImpl(int dim, int hidden) {
    fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  }
  torch::Tensor hidden(const torch::Tensor& x) {
    auto h = linear(x, fc1->weight, fc1->bias);
    return at::gelu_(h);  // in place: the widest activation of the block is not allocated twice
  }
  torch::nn::Linear& out() { return fc2; }
};
TORCH_MODULE(Mlp);

struct SwiGluImpl : torch::nn::Module {
  torch::nn::Linear w12{nullptr}, w3{nullptr};
  SwiGluImpl(int dim, int hidden) {
    w12 = register_module("w12", torch::nn::Linear(dim, 2 * hidden));
    w3 = register_module("w3", torch::nn::Linear(hidden, dim));
  }
  torch::Tensor hidden(const torch::Tensor& x) {
    auto halves = linear(x, w12->weight, w12->bias).chunk(2, -1);
    return F::silu(halves[0]).mul_(halves[1]);
  }
  torch::nn::Linear& out() { return w3; }
};
TORCH_MODULE(SwiGlu);

// timm's GluMlp (SwiGLUPacked): fc1 to int(dim * ratio) channels, silu(first half) * second half, fc2.
struct PackedSwiGluImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  PackedSwiGluImpl(int dim, int hidden) {
    fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden / 2, dim));
  }
  torch::Tensor hidden(const torch::Tensor& x) {
    auto halves = linear(x, fc1->weight, fc1->bias).chunk(2, -1);
    return F::silu(halves[0]).mul_(halves[1]);
  }
  torch::nn::Linear& out() { return fc2; }
};
TORCH_MODULE(PackedSwiGlu);

// LibTorch's bf16 LayerNorm kernel is several times slower than its fp32 one: bf16 activations are normalised in
// fp32 and rounded back once (no less accurate than normalising in bf16).
torch::Tensor layer_norm(torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  const auto& o = norm->options;
  if (x.scalar_type() != torch::kBFloat16) return F::layer_norm(x, F::LayerNormFuncOptions(o.normalized_shape()).weight(norm->weight).bias(norm->bias).eps(o.eps()));
  return F::layer_norm(x.to(torch::kFloat), F::LayerNormFuncOptions(o.normalized_shape())
                                                .weight(norm->weight.to(torch::kFloat))
                                                .bias(norm->bias.to(torch::kFloat))
                                                .eps(o.eps()))
      .to(torch::kBFloat16);
}

// A linear layer in the activations' type: fp32 parameters are cast for bf16 products (the cast is differentiable,
// so gradients reach the fp32 parameters in fp32).
torch::Tensor linear_as_input(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return linear(x, cast_parameter(layer->weight, x.scalar_type()), cast_parameter(layer->bias, x.scalar_type()));
}

// Differentiable multi-head attention (no in-place or out= kernels). The softmax runs in the scores' type: its CPU
// kernel accumulates in fp32 for bf16 anyway, and converting [B*H, N, N] scores to fp32 and back costs more.
torch::Tensor multi_head_attention_differentiable(const torch::Tensor& qkv, std::int64_t heads, double scale) {
  const auto batch = qkv.size(0), tokens = qkv.size(1), width = qkv.size(2) / 3, head_dim = width / heads;
  const auto parts = qkv.view({batch, tokens, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  const auto q = parts[0], k = parts[1], v = parts[2];
  const auto scores = torch::matmul(q, k.transpose(-2, -1)).mul(scale);
  const auto weights = torch::softmax(scores, -1);
  return torch::matmul(weights, v).transpose(1, 2).reshape({batch, tokens, width});
}

// x + branch(x), or DINOv2's sample-subset stochastic depth while training: int(B (1 - rate)) samples (at least
// one), drawn by a random permutation, compute the branch, added with weight B / subset.
template <class Branch>
torch::Tensor add_branch(const torch::Tensor& x, Branch&& branch, double rate, torch::Generator* generator) {
  if (rate <= 0.0) return x + branch(x);
  const auto b = x.size(0);
  const auto subset = std::max<std::int64_t>(static_cast<std::int64_t>(static_cast<double>(b) * (1.0 - rate)), 1);
  auto order = generator ? torch::randperm(b, *generator, torch::TensorOptions().dtype(torch::kLong))
                         : torch::randperm(b, torch::TensorOptions().dtype(torch::kLong));
  const auto chosen = order.slice(0, 0, subset).to(x.device());
  const auto residual = branch(x.index_select(0, chosen));
  return x.index_add(0, chosen, residual.to(x.scalar_type()) * (static_cast<double>(b) / static_cast<double>(subset)));
}

struct BlockImpl : torch::nn::Module {
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  LayerScale ls1{nullptr}, ls2{nullptr};
  Mlp mlp{nullptr};
  SwiGlu swiglu{nullptr};
  PackedSwiGlu packed{nullptr};
  explicit BlockImpl(const VitConfig& c) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(c.eps)));
    attn = register_module("attn", Attention(c.dim, c.heads));
    if (c.layer_scale) ls1 = register_module("ls1", LayerScale(c.dim));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(c.eps)));
    if (c.swiglu_packed) packed = register_module("mlp", PackedSwiGlu(c.dim, static_cast<int>(c.dim * c.mlp_ratio)));
    else if (c.swiglu) swiglu = register_module("mlp", SwiGlu(c.dim, swiglu_hidden_width(c.dim, c.mlp_ratio)));
    else mlp = register_module("mlp", Mlp(c.dim, static_cast<int>(c.dim * c.mlp_ratio)));
    if (c.layer_scale) ls2 = register_module("ls2", LayerScale(c.dim));
  }
  // x: the contiguous residual stream [B, N, C], updated in place.
  torch::Tensor forward(torch::Tensor x) {
    add_residual(x, attn->proj, attn->heads_output(layer_norm(norm1, x)), ls1);
    const auto normed = layer_norm(norm2, x);
    if (packed) add_residual(x, packed->out(), packed->hidden(normed), ls2);
    else if (swiglu) add_residual(x, swiglu->out(), swiglu->hidden(normed), ls2);
    else add_residual(x, mlp->out(), mlp->hidden(normed), ls2);
    return x;
  }

  // The differentiable path (training): out of place, stochastic depth per branch.
  torch::Tensor forward_train(const torch::Tensor& x, double drop_path, torch::Generator* generator) {
    const auto scaled = [](const torch::Tensor& h, const LayerScale& scale) { return scale ? h * cast_parameter(scale->gamma, h.scalar_type()) : h; };
    const auto attention = [&](const torch::Tensor& y) {
      const auto qkv = linear_as_input(attn->qkv, layer_norm(norm1, y));
      return scaled(linear_as_input(attn->proj, multi_head_attention_differentiable(qkv, attn->heads, attn->scale)), ls1);
    };
    const auto feed_forward = [&](const torch::Tensor& y) {
      const auto normed = layer_norm(norm2, y);
      torch::Tensor out;
      if (packed) {
        const auto halves = linear_as_input(packed->fc1, normed).chunk(2, -1);
        out = linear_as_input(packed->fc2, F::silu(halves[0]) * halves[1]);
      } else if (swiglu) {
        const auto halves = linear_as_input(swiglu->w12, normed).chunk(2, -1);
        out = linear_as_input(swiglu->w3, F::silu(halves[0]) * halves[1]);
      } else {
        out = linear_as_input(mlp->fc2, torch::gelu(linear_as_input(mlp->fc1, normed)));
      }
      return scaled(out, ls2);
    };
    TORCH_CHECK(!layer_scale_folded, "a block prepared for inference cannot be trained");
    auto y = add_branch(x, attention, drop_path, generator);
    return add_branch(y, feed_forward, drop_path, generator);
  }

  // LayerScale multiplied into the output projections (inference): gamma * (W h + b) = (gamma W) h + gamma b.
  void fold_layer_scale() {
    if (layer_scale_folded || !ls1) return;
    torch::NoGradGuard no_grad;
    for (auto [scale, linear] : {std::pair{ls1, attn->proj}, std::pair{ls2, output_projection()}}) {
      linear->weight.mul_(scale->gamma.unsqueeze(1));
      if (linear->bias.defined()) linear->bias.mul_(scale->gamma);
    }
    layer_scale_folded = true;
  }

 private:
  torch::nn::Linear output_projection() { return packed ? packed->out() : swiglu ? swiglu->out() : mlp->out(); }

  // x += scale * (h W^T + b) with the product accumulated straight into x (one pass over the stream, no temporary).
  // Under autocast (fp32 weights, bf16/fp16 activations) the in-place product is not cast for us: the weight is.
  void add_residual(torch::Tensor& x, torch::nn::Linear& layer, const torch::Tensor& h, const LayerScale& scale) {
    auto stream = x.view({-1, x.size(-1)});
    const auto rows = h.reshape({-1, h.size(-1)});
    if (scale && !layer_scale_folded) {
      stream.addcmul_(linear(rows, layer->weight, layer->bias), scale->gamma);
      return;
    }
    if (layer->bias.defined()) stream.add_(layer->bias);
    add_product_(stream, rows, cast_parameter(layer->weight, rows.scalar_type()));
  }

  bool layer_scale_folded = false;
};
TORCH_MODULE(Block);

class VisionTransformer final : public torch::nn::Module {
 public:
  explicit VisionTransformer(const VitConfig& c) : config_(c) {
    const int grid = c.img_size / c.patch_size;
    if (c.position_prefix_tokens != 0 && c.position_prefix_tokens != 1 && c.position_prefix_tokens != 1 + c.registers)
      throw std::invalid_argument("position_prefix_tokens must be 0, 1 or 1 + registers (" + std::to_string(1 + c.registers) +
                                  "), got " + std::to_string(c.position_prefix_tokens));
    patch_embed_ = register_module("patch_embed", PatchEmbed(c.dim, c.patch_size));
    cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, c.dim}));
    pos_embed_ = register_parameter("pos_embed", torch::zeros({1, grid * grid + c.position_prefix_tokens, c.dim}));
    if (c.registers > 0)
      register_tokens_ = register_parameter(c.timm ? "reg_token" : "register_tokens", torch::zeros({1, c.registers, c.dim}));
    if (!c.timm) mask_token_ = register_parameter("mask_token", torch::zeros({1, c.dim}));  // used by masked training
    blocks_ = register_module("blocks", torch::nn::ModuleList());
    for (int i = 0; i < c.depth; ++i) blocks_->push_back(Block(c));
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(c.eps)));
  }

  void fold_layer_scale() {
    for (auto& block : *blocks_) block->as<Block>()->fold_layer_scale();
  }

  torch::Tensor position_embeddings_for(std::int64_t h, std::int64_t w) { return position_embeddings(h, w); }

  BackboneOutput forward(const torch::Tensor& images) {
    auto x = tokens(images, torch::Tensor()).contiguous();  // the blocks update this stream in place
    for (auto& block : *blocks_) x = block->as<Block>()->forward(x);
    return outputs(layer_norm(norm_, x));
  }

  BackboneOutput forward_train(const torch::Tensor& images, const torch::Tensor& masks, const std::vector<double>& drop_path,
                               torch::Generator* generator) {
    TORCH_CHECK(drop_path.empty() || drop_path.size() == blocks_->size(), "one drop-path rate per block is needed");
    auto x = tokens(images, masks);
    for (std::size_t i = 0; i < blocks_->size(); ++i)
      x = (*blocks_)[i]->as<Block>()->forward_train(x, drop_path.empty() ? 0.0 : drop_path[i], generator);
    return outputs(layer_norm(norm_, x));
  }

  const VitConfig& config() const { return config_; }
  torch::Dtype parameter_type() const { return pos_embed_.scalar_type(); }
  bool has_mask_token() const { return mask_token_.defined(); }
  void add_mask_token() {
    if (!mask_token_.defined()) mask_token_ = register_parameter("mask_token", torch::zeros({1, config_.dim}, pos_embed_.options()));
  }
  int position_grid() const {
    const auto trained = pos_embed_.size(1) - config_.position_prefix_tokens;
    return static_cast<int>(std::lround(std::sqrt(static_cast<double>(trained))));
  }

  // Replaces the embedding by one for a grid x grid input, once (the parameter keeps its identity).
  void resize_position_grid(int grid, PositionResize method) {
    const std::int64_t prefix = config_.position_prefix_tokens;
    const int m = position_grid();
    if (grid == m) return;
    torch::NoGradGuard no_grad;
    const auto dim = pos_embed_.size(-1);
    auto patches = pos_embed_.slice(1, prefix).reshape({1, m, m, dim});
    torch::Tensor resized;
    if (method == PositionResize::CenterCrop) {
      if (grid > m) throw std::invalid_argument("cannot centre-crop a " + std::to_string(m) + "x" + std::to_string(m) + " position grid to " + std::to_string(grid) + "x" + std::to_string(grid));
      const int start = m / 2 - grid / 2;
      resized = patches.slice(1, start, start + grid).slice(2, start, start + grid).reshape({1, grid * grid, dim});
    } else {
      const double factor = static_cast<double>(grid) / static_cast<double>(m);
      auto options = F::InterpolateFuncOptions().mode(torch::kBicubic).align_corners(false).recompute_scale_factor(false)
                         .scale_factor(std::vector<double>{factor, factor});
      auto out = F::interpolate(patches.permute({0, 3, 1, 2}).to(torch::kFloat), options);
      TORCH_CHECK(out.size(2) == grid && out.size(3) == grid, "position embedding resize gave the wrong grid");
      resized = out.permute({0, 2, 3, 1}).reshape({1, grid * grid, dim}).to(pos_embed_.dtype());
    }
    pos_embed_.set_data(prefix == 0 ? resized.contiguous() : torch::cat({pos_embed_.slice(1, 0, prefix), resized}, 1));
    config_.img_size = grid * config_.patch_size;
  }

  // Adopts a checkpoint's square position grid (a finetuned teacher saved at its training grid): the stored
  // embeddings are loaded as they are and interpolated to each input's grid, as the reference code does.
  void adopt_position_grid(const torch::Tensor& pos) {
    const std::int64_t prefix = config_.position_prefix_tokens;
    if (pos.dim() != 3 || pos.size(2) != pos_embed_.size(2) || pos.size(1) == pos_embed_.size(1)) return;
    const auto grid = static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(pos.size(1) - prefix))));
    if (grid * grid + prefix != pos.size(1)) return;  // not a square grid: the strict match reports it
    torch::NoGradGuard no_grad;
    pos_embed_.set_data(torch::zeros({1, pos.size(1), pos.size(2)}, pos_embed_.options()));
    config_.img_size = static_cast<int>(grid) * config_.patch_size;
  }

 private:
  // Patch embeddings (masked ones replaced by the mask token), class and register tokens, position embeddings.
  torch::Tensor tokens(const torch::Tensor& images, const torch::Tensor& masks) {
    const auto b = images.size(0), h = images.size(2), w = images.size(3);
    auto& proj = patch_embed_->proj;
    // Training in bf16 keeps fp32 parameters: the patch embedding runs on cast copies.
    const auto type = images.scalar_type();
    const auto embedded = type == proj->weight.scalar_type()
                              ? proj->forward(images)
                              : F::conv2d(images, cast_parameter(proj->weight, type),
                                          F::Conv2dFuncOptions().bias(cast_parameter(proj->bias, type)).stride(config_.patch_size));
    auto x = embedded.flatten(2).transpose(1, 2);
    if (masks.defined()) {
      TORCH_CHECK(mask_token_.defined(), "this backbone has no mask token");
      x = torch::where(masks.unsqueeze(-1), mask_token_.to(x.dtype()).unsqueeze(0), x);
    }
    // Token order [cls, registers..., patches]; the first position_prefix_tokens of them and the patches get their
    // embeddings (the same additions as DINOv2's and timm's, whichever order they concatenate in).
    const std::int64_t prefix = config_.position_prefix_tokens;
    const auto pos = position_embeddings(h, w).to(x.dtype());  // fp32 embeddings must not promote bf16 activations
    x = x + pos.slice(1, prefix);
    auto leading = cls_token_.expand({b, -1, -1}).to(x.dtype());
    if (register_tokens_.defined()) leading = torch::cat({leading, register_tokens_.expand({b, -1, -1}).to(x.dtype())}, 1);
    if (prefix > 0) leading = torch::cat({leading.slice(1, 0, prefix) + pos.slice(1, 0, prefix), leading.slice(1, prefix)}, 1);
    return torch::cat({leading, x}, 1);
  }

  BackboneOutput outputs(const torch::Tensor& x) const {
    BackboneOutput out;
    out.cls = x.select(1, 0);
    out.patch_tokens = x.slice(1, 1 + config_.registers);
    return out;
  }

  // The embeddings of the stored grid for an h x w input ([1, prefix + patches, D]), resampled exactly as DINOv2
  // does (bicubic, with its scale-factor (+offset) convention, or an explicit size with antialiasing for the
  // register models) or timm does (a size, antialiased); the leading prefix rows are kept as they are.
  torch::Tensor position_embeddings(std::int64_t h, std::int64_t w) {
    const std::int64_t prefix = config_.position_prefix_tokens;
    const auto h0 = h / config_.patch_size, w0 = w / config_.patch_size;
    const auto trained = pos_embed_.size(1) - prefix;
    if (h0 * w0 == trained && h == w) return pos_embed_;
    const auto dtype = pos_embed_.dtype();
    auto pos = pos_embed_.to(torch::kFloat);
    const auto dim = pos.size(-1);
    const auto m = static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(trained))));
    auto grid = pos.slice(1, prefix).reshape({1, m, m, dim}).permute({0, 3, 1, 2});
    // recompute_scale_factor(false): the scale factor itself maps coordinates, as in the reference.
    auto options = F::InterpolateFuncOptions().mode(torch::kBicubic).align_corners(false).antialias(config_.interpolate_antialias).recompute_scale_factor(false);
    if (config_.interpolate_offset != 0)
      options.scale_factor(std::vector<double>{(static_cast<double>(h0) + config_.interpolate_offset) / static_cast<double>(m),
                                               (static_cast<double>(w0) + config_.interpolate_offset) / static_cast<double>(m)});
    else
      options.size(std::vector<std::int64_t>{h0, w0});
    auto resized = F::interpolate(grid, options);
    TORCH_CHECK(resized.size(2) == h0 && resized.size(3) == w0, "position embedding interpolation gave the wrong grid");
    resized = resized.permute({0, 2, 3, 1}).reshape({1, -1, dim});
    if (prefix == 0) return resized.to(dtype);
    return torch::cat({pos.slice(1, 0, prefix), resized}, 1).to(dtype);
  }

  VitConfig config_;
  PatchEmbed patch_embed_{nullptr};
  torch::Tensor cls_token_, pos_embed_, register_tokens_, mask_token_;
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};

// Where KEY names a block inside a DINOv2 BlockChunk ("<anything.>blocks.<chunk>.<block>.<rest>"): the position
// of <chunk>, and through `block` the position of <block>; npos otherwise.
std::size_t chunk_index_at(const std::string& key, std::size_t& block) {
  const auto digits_then_dot = [&](std::size_t from) {  // the position after "<digits>." at `from`, or npos
    std::size_t end = from;
    while (end < key.size() && std::isdigit(static_cast<unsigned char>(key[end]))) ++end;
    return end > from && end < key.size() && key[end] == '.' ? end + 1 : std::string::npos;
  };
  for (std::size_t at = key.find("blocks."); at != std::string::npos; at = key.find("blocks.", at + 1)) {
    if (at != 0 && key[at - 1] != '.') continue;
    const std::size_t chunk = at + 7, after_chunk = digits_then_dot(chunk);
    if (after_chunk == std::string::npos || digits_then_dot(after_chunk) == std::string::npos) continue;
    block = after_chunk;
    return chunk;
  }
  return std::string::npos;
}

// DINOv2 trained with block_chunks > 0 (its training default, for FSDP) stores blocks.<chunk>.<block>.…; BlockChunk
// pads each chunk with Identity modules, so <block> is already the block's global index: the chunk level goes.
void flatten_block_chunks(std::map<std::string, torch::Tensor>& tensors, const std::string& file) {
  std::map<std::string, torch::Tensor> flat;
  std::map<std::string, std::string> source;  // flattened name -> the file's key, for the error
  bool chunked = false;
  for (auto& [key, tensor] : tensors) {
    std::size_t block = 0;
    const std::size_t chunk = chunk_index_at(key, block);
    const std::string name = chunk == std::string::npos ? key : key.substr(0, chunk) + key.substr(block);
    chunked = chunked || chunk != std::string::npos;
    if (auto [it, fresh] = source.emplace(name, key); !fresh)
      throw std::runtime_error("weights '" + file + "': " + it->second + " and " + key + " are both " + name +
                               " once the block chunks are flattened");
    flat.emplace(name, tensor);
  }
  if (chunked) tensors = std::move(flat);
}

// Modules live in shared_ptrs (LibTorch's modules() and clone() rely on shared_from_this).
class VitBackbone final : public Backbone, public TrainableVit {
 public:
  explicit VitBackbone(const VitConfig& c) : net_(std::make_shared<VisionTransformer>(c)) {}
  torch::nn::Module& module() override { return *net_; }
  BackboneOutput forward(const torch::Tensor& images) override { return net_->forward(images); }
  // A timm-layout model trained here carries a mask token that its published layout lacks.
  bool ignorable_key(const std::string& key) const override {
    return key.rfind("head.", 0) == 0 || (net_->config().timm && key == "mask_token");
  }
  void adapt_checkpoint(std::map<std::string, torch::Tensor>& tensors, const std::string& file) const override {
    flatten_block_chunks(tensors, file);
  }
  void fit_to_checkpoint(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix) override {
    if (auto it = tensors.find(prefix + "pos_embed"); it != tensors.end()) net_->adopt_position_grid(it->second);
  }
  TrainableVit* trainable_vit() override { return this; }

  int depth() const override { return net_->config().depth; }
  int patch_size() const override { return net_->config().patch_size; }
  int dim() const override { return net_->config().dim; }
  int position_grid() const override { return net_->position_grid(); }
  bool has_mask_token() const override { return net_->has_mask_token(); }
  void add_mask_token() override { net_->add_mask_token(); }
  void resize_position_grid(int grid, PositionResize method) override { net_->resize_position_grid(grid, method); }
  BackboneOutput forward_tokens(const torch::Tensor& images, const torch::Tensor& masks, const std::vector<double>& drop_path,
                                torch::Generator* generator, torch::Dtype compute) override {
    const auto input = images.to(compute);
    // The inference path runs its products on the parameters as they are: only when they are in the compute type.
    const bool inference = !torch::GradMode::is_enabled() && !masks.defined() && drop_path.empty() && net_->parameter_type() == compute;
    return inference ? net_->forward(input) : net_->forward_train(input, masks, drop_path, generator);
  }
  // Inference only: LayerScale goes into the projections before they are converted to the target precision.
  void prepare(torch::Device device, torch::Dtype dtype, bool channels_last) override {
    net_->fold_layer_scale();
    Backbone::prepare(device, dtype, channels_last);
  }
  VisionTransformer& net() { return *net_; }

 private:
  std::shared_ptr<VisionTransformer> net_;
};

}  // namespace

std::unique_ptr<Backbone> make_vit(const VitConfig& config) { return std::make_unique<VitBackbone>(config); }

PositionResize parse_position_resize(const std::string& name) {
  if (name == "bicubic") return PositionResize::Bicubic;
  if (name == "center_crop") return PositionResize::CenterCrop;
  throw std::invalid_argument("unknown position-embedding resize '" + name + "' (choose bicubic or center_crop)");
}

torch::Tensor vit_position_embeddings(Backbone& vit, std::int64_t height, std::int64_t width) {
  auto* backbone = dynamic_cast<VitBackbone*>(&vit);
  if (!backbone) throw std::invalid_argument("not a vision transformer");
  torch::NoGradGuard no_grad;
  return backbone->net().position_embeddings_for(height, width);
}

}  // namespace histoflow::torch_encoders
