#include "hf_vit.hpp"

#include <array>
#include <sstream>

namespace histoflow::torch_encoders {
namespace {

bool starts_with(const std::string& text, std::size_t at, const std::string& head) { return text.compare(at, head.size(), head) == 0; }

// Where the HuggingFace part of a key starts, after any prefix ("vit.", "module."), or npos.
std::size_t hf_root(const std::string& key) {
  for (std::size_t p = 0;; ++p) {
    for (const char* root : {"embeddings.", "encoder.layer.", "layernorm."})
      if (starts_with(key, p, root)) return p;
    p = key.find('.', p);
    if (p == std::string::npos) return p;
  }
}

// The timm name of a HuggingFace name (without prefix); "" when it has none (then it stays as it is).
// Query, key and value come back as "blocks.N.attn.qkv.<part>" with which = 0, 1, 2.
std::string timm_name(const std::string& hf, int& which) {
  which = -1;
  static const std::array<std::pair<const char*, const char*>, 6> whole{{
      {"embeddings.cls_token", "cls_token"},
      {"embeddings.position_embeddings", "pos_embed"},
      {"embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight"},
      {"embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias"},
      {"layernorm.weight", "norm.weight"},
      {"layernorm.bias", "norm.bias"},
  }};
  for (const auto& [from, to] : whole)
    if (hf == from) return to;
  if (!starts_with(hf, 0, "encoder.layer.")) return "";
  const auto dot = hf.find('.', 14);
  if (dot == std::string::npos || dot == 14 || hf.find_first_not_of("0123456789", 14) != dot) return "";
  const std::string block = "blocks." + hf.substr(14, dot - 14) + ".", rest = hf.substr(dot + 1);
  static const std::array<std::pair<const char*, const char*>, 8> parts{{
      {"layernorm_before.", "norm1."},
      {"layernorm_after.", "norm2."},
      {"attention.output.dense.", "attn.proj."},
      {"intermediate.dense.", "mlp.fc1."},
      {"output.dense.", "mlp.fc2."},
      {"attention.attention.query.", "attn.qkv."},
      {"attention.attention.key.", "attn.qkv."},
      {"attention.attention.value.", "attn.qkv."},
  }};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string from = parts[i].first;
    if (!starts_with(rest, 0, from)) continue;
    if (i >= 5) which = static_cast<int>(i - 5);
    return block + parts[i].second + rest.substr(from.size());
  }
  return "";
}

class HfVitBackbone final : public Backbone {
 public:
  explicit HfVitBackbone(const VitConfig& c) : vit_(make_vit(c)) {}
  torch::nn::Module& module() override { return vit_->module(); }
  BackboneOutput forward(const torch::Tensor& images) override { return vit_->forward(images); }
  void prepare(torch::Device device, torch::Dtype dtype, bool channels_last) override { vit_->prepare(device, dtype, channels_last); }
  TrainableVit* trainable_vit() override { return vit_->trainable_vit(); }
  void fit_to_checkpoint(const std::map<std::string, torch::Tensor>& tensors, const std::string& prefix) override { vit_->fit_to_checkpoint(tensors, prefix); }
  // ViTModel's pooler, the masked-image-modelling token, classifier heads: present in published files, unused.
  bool ignorable_key(const std::string& key) const override {
    return key.rfind("pooler.", 0) == 0 || key == "embeddings.mask_token" || key.rfind("classifier.", 0) == 0 || key.rfind("head.", 0) == 0;
  }
  void adapt_checkpoint(std::map<std::string, torch::Tensor>& tensors, const std::string& file) const override {
    hf_vit_keys_to_timm(tensors, file);
  }

 private:
  std::unique_ptr<Backbone> vit_;
};

}  // namespace

std::unique_ptr<Backbone> make_hf_vit(const VitConfig& config) { return std::make_unique<HfVitBackbone>(config); }

void hf_vit_keys_to_timm(std::map<std::string, torch::Tensor>& tensors, const std::string& file) {
  struct Qkv {
    std::array<std::string, 3> keys;
    std::array<torch::Tensor, 3> parts;
  };
  std::map<std::string, torch::Tensor> out;
  std::map<std::string, Qkv> qkv;  // by timm name
  const auto put = [&](const std::string& name, const torch::Tensor& tensor, const std::string& from) {
    if (!out.emplace(name, tensor).second)
      throw std::runtime_error("weights '" + file + "': " + from + " maps to " + name + ", which the file already holds");
  };
  for (const auto& [key, tensor] : tensors) {
    const auto root = hf_root(key);
    int which = -1;
    const std::string mapped = root == std::string::npos ? "" : timm_name(key.substr(root), which);
    const std::string name = mapped.empty() ? key : key.substr(0, root) + mapped;
    if (which < 0) {
      put(name, tensor, key);
    } else {
      qkv[name].keys[which] = key;
      qkv[name].parts[which] = tensor;
    }
  }
  for (const auto& [name, group] : qkv) {
    if (!group.parts[0].defined() || !group.parts[1].defined() || !group.parts[2].defined()) {
      for (std::size_t i = 0; i < 3; ++i)  // incomplete: left under their own names, the strict check lists them
        if (group.parts[i].defined()) put(group.keys[i], group.parts[i], group.keys[i]);
      continue;
    }
    if (group.parts[0].sizes() != group.parts[1].sizes() || group.parts[0].sizes() != group.parts[2].sizes()) {
      std::ostringstream text;
      text << "weights '" << file << "': " << group.keys[0] << " " << group.parts[0].sizes() << ", " << group.keys[1] << " "
           << group.parts[1].sizes() << " and " << group.keys[2] << " " << group.parts[2].sizes() << " differ in shape";
      throw std::runtime_error(text.str());
    }
    put(name, torch::cat({group.parts[0], group.parts[1], group.parts[2]}, 0), group.keys[0]);
  }
  tensors = std::move(out);
}

}  // namespace histoflow::torch_encoders
