#include "swin.hpp"

#include <cmath>
#include <set>

namespace histoflow::torch_encoders {
namespace {
namespace F = torch::nn::functional;

// How a block attends, as timm decides it: a grid no larger than the window is one window, never shifted;
// otherwise every second block shifts its windows by half a window.
struct BlockLayout {
  int window;
  int shift;
};

BlockLayout block_layout(int resolution, int window, int block_index) {
  if (resolution <= window) return {resolution, 0};
  return {window, block_index % 2 == 1 ? window / 2 : 0};
}

int stage_resolution(const SwinConfig& c, std::size_t stage) { return (c.img_size / 4) >> stage; }

// index[i][j] into the relative position bias table for tokens i = (hi, wi) and j = (hj, wj) of a window.
torch::Tensor relative_position_index(int window) {
  const auto coords = torch::arange(window, torch::kLong);
  const auto h = coords.repeat_interleave(window), w = coords.repeat({window});
  const auto dh = h.unsqueeze(1) - h.unsqueeze(0) + (window - 1);
  const auto dw = w.unsqueeze(1) - w.unsqueeze(0) + (window - 1);
  return dh * (2 * window - 1) + dw;
}

// [windows, N, N]: -100 between tokens that the cyclic shift brought together from different image regions.
torch::Tensor shifted_window_mask(int resolution, int window, int shift) {
  auto regions = torch::zeros({resolution, resolution});
  const int bounds[4] = {0, resolution - window, resolution - shift, resolution};
  float label = 0;
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x) regions.slice(0, bounds[y], bounds[y + 1]).slice(1, bounds[x], bounds[x + 1]).fill_(label++);
  const int n = resolution / window;
  const auto windows = regions.view({n, window, n, window}).permute({0, 2, 1, 3}).reshape({n * n, window * window});
  const auto differ = (windows.unsqueeze(1) - windows.unsqueeze(2)) != 0;
  return torch::zeros(differ.sizes()).masked_fill(differ, -100.0);
}

// [B, H, W, C] <-> [B * windows, window * window, C], windows in row-major order.
torch::Tensor partition(const torch::Tensor& x, int window) {
  const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  return x.view({b, h / window, window, w / window, window, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, window * window, c});
}

torch::Tensor unpartition(const torch::Tensor& windows, int window, std::int64_t b, std::int64_t h, std::int64_t w) {
  const auto c = windows.size(-1);
  return windows.view({b, h / window, w / window, window, window, c}).permute({0, 1, 3, 2, 4, 5}).reshape({b, h, w, c});
}

struct WindowAttentionImpl : torch::nn::Module {
  torch::Tensor relative_position_bias_table;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor index;  // computed, so not a buffer: neither initialised nor expected in checkpoints
  int heads;
  double scale;
  WindowAttentionImpl(int dim, int heads_, int window)
      : index(relative_position_index(window).flatten()), heads(heads_), scale(1.0 / std::sqrt(static_cast<double>(dim / heads_))) {
    relative_position_bias_table = register_parameter("relative_position_bias_table", torch::zeros({(2 * window - 1) * (2 * window - 1), heads}));
    qkv = register_module("qkv", torch::nn::Linear(dim, dim * 3));
    proj = register_module("proj", torch::nn::Linear(dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {
    const auto bw = x.size(0), n = x.size(1), c = x.size(2);
    auto parts = qkv(x).reshape({bw, n, 3, heads, c / heads}).permute({2, 0, 3, 1, 4});
    auto q = parts[0] * scale, k = parts[1], v = parts[2];  // the reference scales q before the product
    if (index.device() != relative_position_bias_table.device()) index = index.to(relative_position_bias_table.device());
    const auto bias = relative_position_bias_table.index_select(0, index).view({n, n, heads}).permute({2, 0, 1});
    auto scores = torch::matmul(q, k.transpose(-2, -1)) + bias.unsqueeze(0);
    if (mask.defined()) {
      const auto windows = mask.size(0);
      scores = (scores.view({-1, windows, heads, n, n}) + mask.unsqueeze(1).unsqueeze(0)).view({-1, heads, n, n});
    }
    const auto out = torch::matmul(torch::softmax(scores, -1), v);
    return proj(out.transpose(1, 2).reshape({bw, n, c}));
  }
};
TORCH_MODULE(WindowAttention);

struct SwinMlpImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  SwinMlpImpl(int dim, int hidden) {
    fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(F::gelu(fc1(x))); }
};
TORCH_MODULE(SwinMlp);

struct SwinBlockImpl : torch::nn::Module {
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  WindowAttention attn{nullptr};
  SwinMlp mlp{nullptr};
  BlockLayout layout;
  torch::Tensor mask;  // shifted blocks only; computed, like the index
  SwinBlockImpl(int dim, int heads, int resolution, BlockLayout layout_, double mlp_ratio) : layout(layout_) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    attn = register_module("attn", WindowAttention(dim, heads, layout.window));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
    mlp = register_module("mlp", SwinMlp(dim, static_cast<int>(dim * mlp_ratio)));
    if (layout.shift > 0) mask = shifted_window_mask(resolution, layout.window, layout.shift);
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [B, H, W, C]
    const auto b = x.size(0), h = x.size(1), w = x.size(2);
    auto y = norm1(x);
    if (layout.shift > 0) y = torch::roll(y, {-layout.shift, -layout.shift}, {1, 2});
    if (mask.defined() && (mask.device() != x.device() || mask.scalar_type() != x.scalar_type()))
      mask = mask.to(x.device(), x.scalar_type());  // 0 and -100 are exact in every float type
    y = unpartition(attn(partition(y, layout.window), mask), layout.window, b, h, w);
    if (layout.shift > 0) y = torch::roll(y, {layout.shift, layout.shift}, {1, 2});
    const auto z = x + y;
    return z + mlp(norm2(z));
  }
};
TORCH_MODULE(SwinBlock);

// 2x2 neighbours concatenated as (0,0), (1,0), (0,1), (1,1) (row, column), normed, projected to twice the width.
struct PatchMergingImpl : torch::nn::Module {
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear reduction{nullptr};
  explicit PatchMergingImpl(int dim) {
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * dim})));
    reduction = register_module("reduction", torch::nn::Linear(torch::nn::LinearOptions(4 * dim, 2 * dim).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
    return reduction(norm(x.view({b, h / 2, 2, w / 2, 2, c}).permute({0, 1, 3, 4, 2, 5}).reshape({b, h / 2, w / 2, 4 * c})));
  }
};
TORCH_MODULE(PatchMerging);

// CTransPath's stem: two stride-2 3x3 convolutions with batch norm and ReLU, a 1x1 projection, a LayerNorm.
struct ConvStemImpl : torch::nn::Module {
  torch::nn::Sequential proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  explicit ConvStemImpl(int dim) {
    const auto conv3x3 = [](int in, int out) {
      return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(2).padding(1).bias(false));
    };
    proj = register_module("proj", torch::nn::Sequential(conv3x3(3, dim / 8), torch::nn::BatchNorm2d(dim / 8), torch::nn::ReLU(),
                                                         conv3x3(dim / 8, dim / 4), torch::nn::BatchNorm2d(dim / 4), torch::nn::ReLU(),
                                                         torch::nn::Conv2d(torch::nn::Conv2dOptions(dim / 4, dim, 1))));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  }
  torch::Tensor forward(const torch::Tensor& images) { return norm(proj->forward(images).permute({0, 2, 3, 1})); }
};
TORCH_MODULE(ConvStem);

struct SwinStageImpl : torch::nn::Module {
  torch::nn::ModuleList blocks{nullptr};
  PatchMerging downsample{nullptr};
  SwinStageImpl(const SwinConfig& c, std::size_t stage) {
    const int dim = c.embed_dim << stage, resolution = stage_resolution(c, stage);
    blocks = register_module("blocks", torch::nn::ModuleList());
    for (int j = 0; j < c.depths[stage]; ++j)
      blocks->push_back(SwinBlock(dim, c.heads[stage], resolution, block_layout(resolution, c.window, j), c.mlp_ratio));
    if (stage + 1 < c.depths.size()) downsample = register_module("downsample", PatchMerging(dim));  // timm 0.5.4: at the end
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& block : *blocks) x = block->as<SwinBlock>()->forward(x);
    return downsample ? downsample(x) : x;
  }
};
TORCH_MODULE(SwinStage);

void validate(const SwinConfig& c) {
  const auto fail = [](const std::string& why) { throw std::invalid_argument("swin configuration: " + why); };
  if (c.embed_dim % 8 != 0) fail("embed_dim " + std::to_string(c.embed_dim) + " is not a multiple of 8 (the stem needs E/8)");
  if (c.depths.empty() || c.depths.size() != c.heads.size()) fail("depths and heads need one entry per stage");
  if (c.img_size % 4 != 0) fail("img_size " + std::to_string(c.img_size) + " is not a multiple of 4");
  for (std::size_t i = 0; i < c.depths.size(); ++i) {
    const int resolution = stage_resolution(c, i);
    if (((c.embed_dim << i) % c.heads[i]) != 0) fail("stage " + std::to_string(i) + ": width not divisible by its heads");
    if (resolution > c.window && resolution % c.window != 0)
      fail("stage " + std::to_string(i) + ": grid " + std::to_string(resolution) + " is not a multiple of the window");
    if (i + 1 < c.depths.size() && resolution % 2 != 0) fail("stage " + std::to_string(i) + ": odd grid cannot be merged");
  }
}

class SwinTransformer final : public torch::nn::Module {
 public:
  explicit SwinTransformer(const SwinConfig& c) : config_(c) {
    validate(c);
    patch_embed_ = register_module("patch_embed", ConvStem(c.embed_dim));
    layers_ = register_module("layers", torch::nn::ModuleList());
    for (std::size_t i = 0; i < c.depths.size(); ++i) layers_->push_back(SwinStage(c, i));
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.embed_dim << (c.depths.size() - 1)})));
  }
  torch::Tensor forward(const torch::Tensor& images) {
    if (images.size(2) != config_.img_size || images.size(3) != config_.img_size)
      throw std::invalid_argument("this Swin Transformer takes " + std::to_string(config_.img_size) + "x" + std::to_string(config_.img_size) +
                                  " inputs (its windows and masks are laid out for that grid), got " + std::to_string(images.size(2)) + "x" +
                                  std::to_string(images.size(3)));
    auto x = patch_embed_(images);
    for (auto& stage : *layers_) x = stage->as<SwinStage>()->forward(x);
    return norm_(x).mean({1, 2});
  }

 private:
  SwinConfig config_;
  ConvStem patch_embed_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};

// Where "layers." starts in a key that may carry a prefix (module., backbone.), or npos.
std::size_t layers_root(const std::string& key) {
  for (std::size_t p = 0;; ++p) {
    if (key.compare(p, 7, "layers.") == 0) return p;
    p = key.find('.', p);
    if (p == std::string::npos) return p;
  }
}

class SwinBackbone final : public Backbone {
 public:
  explicit SwinBackbone(const SwinConfig& c) : config_(c), net_(std::make_shared<SwinTransformer>(c)) {}
  torch::nn::Module& module() override { return *net_; }
  BackboneOutput forward(const torch::Tensor& images) override {
    BackboneOutput out;
    out.pooled = net_->forward(images);
    return out;
  }
  bool ignorable_key(const std::string& key) const override { return key.rfind("head.", 0) == 0; }  // classifier

  void adapt_checkpoint(std::map<std::string, torch::Tensor>& tensors, const std::string& file) const override {
    check_and_drop_computed_buffers(tensors, file);
    move_downsample_to_stage_ends(tensors, file);
  }

 private:
  // timm 0.5.4 saved relative_position_index and attn_mask: accepted when they equal what this layout computes.
  // Buffers of another shape (another architecture or input size) stay, so the strict check lists them with the
  // rest; same shape but other values means another window convention, which no key list would reveal.
  void check_and_drop_computed_buffers(std::map<std::string, torch::Tensor>& tensors, const std::string& file) const {
    const auto computed = swin_computed_buffers(config_);
    for (auto it = tensors.begin(); it != tensors.end();) {
      const std::string& key = it->first;
      const auto root = layers_root(key);
      const auto known = root == std::string::npos ? computed.end() : computed.find(key.substr(root));
      if (known == computed.end() || it->second.sizes() != known->second.sizes()) {
        ++it;
        continue;
      }
      if (!torch::equal(it->second.to(known->second.scalar_type()), known->second))
        throw std::runtime_error("weights '" + file + "': " + key + " holds other values than this architecture computes " +
                                 "(another window or shift convention)");
      it = tensors.erase(it);
    }
  }

  // timm >= 0.9 keeps each PatchMerging at the start of the next stage (layers.1.downsample merges stage 0).
  void move_downsample_to_stage_ends(std::map<std::string, torch::Tensor>& tensors, const std::string& file) const {
    std::set<int> stages_with_downsample;
    const auto downsample_stage = [](const std::string& key, std::size_t root) {
      const auto dot = key.find('.', root + 7);
      if (dot == std::string::npos || key.compare(dot, 12, ".downsample.") != 0) return -1;
      try {
        return std::stoi(key.substr(root + 7, dot - root - 7));
      } catch (const std::exception&) {
        return -1;
      }
    };
    for (const auto& [key, tensor] : tensors)
      if (const auto root = layers_root(key); root != std::string::npos && downsample_stage(key, root) >= 0)
        stages_with_downsample.insert(downsample_stage(key, root));
    if (stages_with_downsample.empty() || stages_with_downsample.count(0)) return;  // the published layout
    std::map<std::string, torch::Tensor> renamed;
    for (auto& [key, tensor] : tensors) {
      std::string name = key;
      if (const auto root = layers_root(key); root != std::string::npos) {
        const int stage = downsample_stage(key, root);
        if (stage > 0) name = key.substr(0, root) + "layers." + std::to_string(stage - 1) + key.substr(key.find('.', root + 7));
      }
      if (!renamed.emplace(name, tensor).second)
        throw std::runtime_error("weights '" + file + "': " + key + " would replace another tensor named " + name);
    }
    tensors = std::move(renamed);
  }

  SwinConfig config_;
  std::shared_ptr<SwinTransformer> net_;
};

}  // namespace

std::unique_ptr<Backbone> make_swin(const SwinConfig& config) { return std::make_unique<SwinBackbone>(config); }

std::map<std::string, torch::Tensor> swin_computed_buffers(const SwinConfig& config) {
  validate(config);
  std::map<std::string, torch::Tensor> buffers;
  for (std::size_t i = 0; i < config.depths.size(); ++i) {
    const int resolution = stage_resolution(config, i);
    for (int j = 0; j < config.depths[i]; ++j) {
      const auto layout = block_layout(resolution, config.window, j);
      const std::string block = "layers." + std::to_string(i) + ".blocks." + std::to_string(j) + ".";
      buffers[block + "attn.relative_position_index"] = relative_position_index(layout.window);
      if (layout.shift > 0) buffers[block + "attn_mask"] = shifted_window_mask(resolution, layout.window, layout.shift);
    }
  }
  return buffers;
}

}  // namespace histoflow::torch_encoders
