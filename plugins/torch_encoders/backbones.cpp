// The named backbone configurations. Adding a model family means adding a plugin that registers here
// through its own names; these are the ones the benchmark of the paper compares.
#include <dlfcn.h>

#include <mutex>
#include <set>
#include <stdexcept>

#include "hf_vit.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "resnet.hpp"
#include "swin.hpp"

namespace histoflow::torch_encoders {
namespace {

void add_dinov2(std::map<std::string, BackboneSpec>& r, const std::string& size, int dim, int depth, int heads, bool swiglu) {
  for (const bool registers : {false, true}) {
    VitConfig c;
    c.dim = dim, c.depth = depth, c.heads = heads, c.swiglu = swiglu;
    if (registers) c.registers = 4, c.interpolate_antialias = true, c.interpolate_offset = 0.0;
    BackboneSpec s;
    s.name = "dinov2_vit" + size + "14" + (registers ? "_reg" : "");
    s.family = "vit";
    s.description = "DINOv2 ViT-" + std::string(1, static_cast<char>(std::toupper(size[0]))) + "/14" +
                    (registers ? " with 4 register tokens" : "") + (swiglu ? ", SwiGLU feed-forward" : "") +
                    "; position embeddings for 518 px (37x37), interpolated to the input grid";
    s.dim = dim;
    s.outputs = {"cls", "mean_patch", "cls+mean_patch"};
    s.weights_source = "facebookresearch/dinov2 hub checkpoints (" + s.name + "_pretrain.pth), or DINOv2-finetuned teacher checkpoints";
    s.create = [c] { return make_vit(c); };
    r.emplace(s.name, s);
  }
}

std::map<std::string, BackboneSpec> build() {
  std::map<std::string, BackboneSpec> r;
  add_dinov2(r, "s", 384, 12, 6, false);
  add_dinov2(r, "b", 768, 12, 12, false);
  add_dinov2(r, "l", 1024, 24, 16, false);
  add_dinov2(r, "g", 1536, 40, 24, true);
  // ResNet-50 in torchvision's layout: ImageNet's, CLAM's truncated one, and RetCCL (Wang et al. 2023, the study's
  // domain-specific CNN), which is the same network with weights from clustering-guided contrastive learning on
  // TCGA and PAIP; its own name lets a graph's encoder list and the study's reference rows call it by it.
  const auto add_resnet = [&](std::string name, bool truncated, std::string description, std::string source) {
    BackboneSpec s;
    s.name = std::move(name);
    s.family = "resnet";
    s.description = std::move(description);
    s.dim = truncated ? 1024 : 2048;
    s.outputs = {"pooled"};
    s.channels_last = true;
    s.weights_source = std::move(source);
    s.create = [truncated] { return make_resnet50(truncated); };
    r.emplace(s.name, s);
  };
  add_resnet("resnet50", false, "ResNet-50 (torchvision layout), average-pooled layer4: 2048-d (ImageNet)",
             "torchvision ImageNet weights (resnet50-*.pth); fc.* keys are ignored");
  add_resnet("resnet50_trunc", true, "ResNet-50 (torchvision layout) truncated after layer3, average-pooled: 1024-d (CLAM)",
             "torchvision ImageNet weights (resnet50-*.pth); layer4.* and fc.* keys are ignored");
  add_resnet("retccl", false, "RetCCL: ResNet-50 (torchvision layout) trained on TCGA and PAIP, average-pooled layer4: 2048-d",
             "best_ckpt.pth of Xiyue-Wang/RetCCL (torchvision key names; fc.* keys are ignored)");
  // timm-layout pathology models (their published weights use timm key names).
  const auto add_timm = [&](const std::string& name, const std::string& description, VitConfig c, std::string source) {
    c.timm = true, c.interpolate_antialias = true, c.interpolate_offset = 0.0;  // timm resamples to a size, antialiased
    BackboneSpec s;
    s.name = name;
    s.family = "vit";
    s.description = description;
    s.dim = c.dim;
    s.outputs = {"cls+mean_patch", "cls", "mean_patch"};  // what UNI and Virchow recommend comes first
    s.weights_source = std::move(source);
    s.create = [c] { return make_vit(c); };
    r.emplace(s.name, s);
  };
  {
    VitConfig uni;
    uni.img_size = 224, uni.patch_size = 16, uni.dim = 1024, uni.depth = 24, uni.heads = 16;
    add_timm("uni", "UNI: timm ViT-L/16 with LayerScale, 224 px", uni, "MahmoodLab/UNI pytorch_model.bin (timm keys)");
    VitConfig virchow2;
    virchow2.img_size = 224, virchow2.patch_size = 14, virchow2.dim = 1280, virchow2.depth = 32, virchow2.heads = 16;
    // paige-ai/Virchow2's config.json sets no no_embed_class: pos_embed [1, 5 + 256, 1280] covers cls and registers.
    virchow2.mlp_ratio = 5.3375, virchow2.swiglu_packed = true, virchow2.registers = 4, virchow2.position_prefix_tokens = 5;
    add_timm("virchow2", "Virchow2: timm ViT-H/14 with 4 registers and packed SwiGLU, 224 px; position embeddings for cls, registers and patches", virchow2,
             "paige-ai/Virchow2 pytorch_model.bin (timm keys)");
    VitConfig uni2;
    uni2.img_size = 224, uni2.patch_size = 14, uni2.dim = 1536, uni2.depth = 24, uni2.heads = 24;
    // MahmoodLab/UNI2-h's timm kwargs set no_embed_class=True: pos_embed [1, 256, 1536] for the patches only.
    uni2.mlp_ratio = 2.66667 * 2, uni2.swiglu_packed = true, uni2.registers = 8, uni2.position_prefix_tokens = 0;
    add_timm("uni2_h", "UNI2-h: timm ViT-H/14 with 8 registers and packed SwiGLU, 224 px; position embeddings for the patches only", uni2,
             "MahmoodLab/UNI2-h pytorch_model.bin (timm keys)");
  }
  {
    // Phikon: iBOT ViT-B/16 published as a HuggingFace ViTModel (LayerNorm eps 1e-12, no LayerScale).
    VitConfig phikon;
    phikon.timm = true, phikon.layer_scale = false, phikon.eps = 1e-12;
    phikon.img_size = 224, phikon.patch_size = 16, phikon.dim = 768, phikon.depth = 12, phikon.heads = 12;
    phikon.interpolate_antialias = false, phikon.interpolate_offset = 0.0;  // HF resamples to a size, bicubic
    BackboneSpec s;
    s.name = "phikon";
    s.family = "vit";
    s.description = "Phikon: iBOT ViT-B/16 in HuggingFace ViTModel layout (LayerNorm eps 1e-12), 224 px";
    s.dim = phikon.dim;
    s.outputs = {"cls", "mean_patch", "cls+mean_patch"};
    s.weights_source = "owkin/phikon model.safetensors or pytorch_model.bin (HuggingFace ViTModel keys; the pooler is ignored)";
    s.create = [phikon] { return make_hf_vit(phikon); };
    r.emplace(s.name, s);
  }
  {
    const SwinConfig ctranspath;  // Swin-T: 96 wide, depths 2-2-6-2, heads 3-6-12-24, window 7, 224 px
    BackboneSpec s;
    s.name = "ctranspath";
    s.family = "swin";
    s.description = "CTransPath: Swin-T (window 7) with a convolutional stem, mean of the final normed feature map; 224 px only";
    s.dim = ctranspath.embed_dim << (ctranspath.depths.size() - 1);
    s.outputs = {"pooled"};
    s.weights_source = "ctranspath.pth of Xiyue-Wang/TransPath (timm 0.5.4 keys under 'model'); timm >= 0.9 key layouts load too";
    s.create = [ctranspath] { return make_swin(ctranspath); };
    r.emplace(s.name, s);
  }

  BackboneSpec script;
  script.name = "torchscript";
  script.family = "torchscript";
  script.description = "Any TorchScript file (weights = the .pt archive): declare input_size, mean, std and output_size";
  script.outputs = {"pooled"};
  script.weights_source = "torch.jit.trace or torch.jit.script of any model, saved with .save()";
  r.emplace(script.name, script);  // created by the encoder from its weights file, not here
  return r;
}

}  // namespace

void Backbone::prepare(torch::Device device, torch::Dtype dtype, bool channels_last) {
  module().to(device, dtype);
  module().eval();
  if (!channels_last) return;
  torch::NoGradGuard no_grad;
  for (auto& p : module().parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

void prepare_for_inference(Backbone& backbone, const BackboneSpec& spec, torch::Device device, torch::Dtype dtype) {
  backbone.prepare(device, dtype, spec.channels_last);
}

namespace {
std::string library_file() {  // libhistoflow_torch_encoders.so, where the built-ins live
  Dl_info info{};
  const bool found = dladdr(reinterpret_cast<const void*>(&register_backbone), &info) && info.dli_fname;
  return found ? info.dli_fname : "libhistoflow_torch_encoders.so";
}
std::string origin(const std::string& file) { return file.empty() ? "(not a plugin load)" : "'" + file + "'"; }

struct BackboneRegistry {
  BackboneRegistry() {
    for (auto& [name, spec] : build()) {
      unclaimed.insert(name);
      specs.emplace(name, std::make_unique<BackboneSpec>(std::move(spec)));
    }
  }
  std::string registered_by(const std::string& name) const {
    if (unclaimed.count(name)) return "'" + library_file() + "' (built in)";
    const auto it = files.find(name);
    return origin(it == files.end() ? "" : it->second);
  }
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<BackboneSpec>> specs;  // stable addresses for find_backbone
  std::map<std::string, std::string> files;  // name -> the plugin file that registered (or claimed) it
  std::set<std::string> unclaimed;           // built-ins not yet entered in the catalogue by torch_encoders
};
BackboneRegistry& registry() {
  static BackboneRegistry r;
  return r;
}
}  // namespace

void register_backbone(BackboneSpec spec) {
  auto& r = registry();
  Registry& catalogue = Registry::instance();
  const std::string file = catalogue.loading_file();
  std::lock_guard lock(r.mutex);
  if (r.specs.count(spec.name))
    throw std::runtime_error("backbone '" + spec.name + "' is registered twice: by " + r.registered_by(spec.name) +
                             " and by " + origin(file));
  if (!spec.create) throw std::runtime_error("backbone '" + spec.name + "' has no constructor");
  catalogue.add_entry(catalogue_entry(spec));  // before the spec: a refused backbone is in neither list
  const std::string name = spec.name;
  r.files[name] = file;
  r.specs.emplace(name, std::make_unique<BackboneSpec>(std::move(spec)));
}

void catalogue_builtin_backbones(Registry& catalogue) {
  auto& r = registry();
  const std::string file = catalogue.loading_file();
  std::lock_guard lock(r.mutex);
  for (auto it = r.unclaimed.begin(); it != r.unclaimed.end(); it = r.unclaimed.erase(it)) {
    catalogue.add_entry(catalogue_entry(*r.specs.at(*it)));
    r.files[*it] = file;
  }
}

std::vector<std::string> backbone_names() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, spec] : r.specs) names.push_back(name);
  return names;
}

torch::Device parse_device(const std::string& text) {
  if (text == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text == "cuda" || text.rfind("cuda:", 0) == 0) {
    const int index = text == "cuda" ? 0 : std::stoi(text.substr(5));
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (index >= count)
      throw FatalError("device '" + text + "' requested, but " +
                       (count == 0 ? std::string("no CUDA device is available to this LibTorch") : std::to_string(count) + " CUDA device(s) exist"));
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw FatalError("device must be auto, cpu, cuda or cuda:N, got '" + text + "'");
}

const BackboneSpec& find_backbone(const std::string& name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.specs.find(name);
  if (it == r.specs.end()) {
    std::string known;
    for (const auto& [n, spec] : r.specs) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown backbone '" + name + "' (known: " + known + ")");
  }
  return *it->second;
}

}  // namespace histoflow::torch_encoders
