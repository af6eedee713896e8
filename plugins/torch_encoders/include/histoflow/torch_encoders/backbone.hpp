#pragma once
// Backbones: a torch module plus what the encoder needs to know about it. Each family (ViT, ResNet) is
// registered under the names of its known configurations.
#include <torch/torch.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace histoflow {
class Registry;
struct CatalogueEntry;
}  // namespace histoflow

namespace histoflow::torch_encoders {

class TrainableVit;

// What a forward pass gives: the pieces the encoder's `output` parameter chooses from.
struct BackboneOutput {
  torch::Tensor cls;           // [B, D] (token models)
  torch::Tensor patch_tokens;  // [B, N, D] (token models)
  torch::Tensor pooled;        // [B, D] (convolutional models)
};

class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual torch::nn::Module& module() = 0;
  virtual BackboneOutput forward(const torch::Tensor& images) = 0;  // normalised float NCHW
  // Checkpoint keys that belong to heads this backbone does not use (classifier, DINO head): ignored.
  virtual bool ignorable_key(const std::string& key) const = 0;
  // Checkpoints published in another key layout (HuggingFace names, buffers that older code saved although they
  // are computed): renames, merges, or checks and drops tensors so that the module's names remain, before the
  // strict match. Keys may still carry a prefix (module., backbone.). Throws naming the file and key on a
  // tensor that cannot be adapted. Default: the checkpoint is in the module's layout.
  virtual void adapt_checkpoint(std::map<std::string, torch::Tensor>& /*tensors*/, const std::string& /*file*/) const {}
  // Device, dtype and eval mode; for CNNs the 4-D weights channels-last (C++ modules have no
  // to(memory_format)). TorchScript models override it: they carry their own parameters.
  virtual void prepare(torch::Device device, torch::Dtype dtype, bool channels_last);
  // The training view of a vision transformer (self-supervised finetuning); nullptr for every other model.
  virtual TrainableVit* trainable_vit() { return nullptr; }
  // Called by load_into before the strict match: a backbone may take a shape from the checkpoint that is a
  // property of the weights rather than of the architecture (a ViT's position-embedding grid).
  virtual void fit_to_checkpoint(const std::map<std::string, torch::Tensor>& /*tensors*/, const std::string& /*prefix*/) {}
};

struct BackboneSpec {
  std::string name;
  std::string family;            // "vit", "resnet" or "torchscript"
  std::string description;
  int input_size = 224;          // default square input in pixels
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
  int dim = 0;                   // feature width of cls / patch tokens / pooled output
  std::vector<std::string> outputs;  // supported `output` values
  bool channels_last = false;    // CNNs run faster in NHWC on CPU
  std::string weights_source;    // where people get the weights
  std::function<std::unique_ptr<Backbone>()> create;
};

// "auto", "cpu", "cuda" or "cuda:N"; a FatalError naming what exists when the device is not there.
torch::Device parse_device(const std::string& text);

void prepare_for_inference(Backbone& backbone, const BackboneSpec& spec, torch::Device device, torch::Dtype dtype);

// The one backbone registry of the process (in libhistoflow_torch_encoders.so, shared by every torch plugin).
// A plugin adds a family by calling register_backbone from its registration function; see plugins/example_backbone.
// Each backbone is also entered in the framework's catalogue (category "backbone"), attributed to the plugin
// being loaded, which is what `flowrun backbones` and `flowrun describe backbone NAME` list.
void register_backbone(BackboneSpec spec);  // throws when the name is taken, naming both plugin files
const BackboneSpec& find_backbone(const std::string& name);  // throws listing the known names
std::vector<std::string> backbone_names();
// Enters the built-in backbones in the catalogue, attributed to the plugin being loaded: torch_encoders calls it
// when it registers (libhistoflow_torch_encoders.so is loaded by whichever torch plugin comes first, so only
// then is the file that provides them, to the user, known).
void catalogue_builtin_backbones(Registry& registry);
// The catalogue's view of a spec: summary, details and fields (family, width, input size, ...).
CatalogueEntry catalogue_entry(const BackboneSpec& spec);

}  // namespace histoflow::torch_encoders
