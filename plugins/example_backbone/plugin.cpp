// Adds the backbone "example_small_cnn": a three-layer CNN giving 32 pooled features. Everything a new
// family needs is here: the module (parameter names are the checkpoint's key names), a Backbone that runs it,
// and a BackboneSpec registered when the plugin loads.
#include <torch/torch.h>
#include <torch/version.h>

#include "histoflow/torch_encoders/backbone.hpp"
#define HISTOFLOW_PLUGIN_TORCH_VERSION TORCH_VERSION  // the handshake refuses a plugin built for another LibTorch
#include "histoflow/plugin_api.hpp"

namespace histoflow::example_backbone {
namespace {

using namespace torch_encoders;

struct SmallCnn : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  SmallCnn() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 16, 3).stride(2).padding(1)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).stride(2).padding(1)));
    conv3 = register_module("conv3", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 32, 3).stride(2).padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(conv1(x));
    y = torch::relu(conv2(y));
    return torch::adaptive_avg_pool2d(torch::relu(conv3(y)), {1, 1}).flatten(1);
  }
};

class SmallCnnBackbone final : public Backbone {
 public:
  torch::nn::Module& module() override { return *net_; }
  BackboneOutput forward(const torch::Tensor& images) override {
    BackboneOutput out;
    out.pooled = net_->forward(images);
    return out;
  }
  bool ignorable_key(const std::string& key) const override { return key.rfind("head.", 0) == 0; }

 private:
  std::shared_ptr<SmallCnn> net_ = std::make_shared<SmallCnn>();
};

void register_example_backbone(Registry&) {
  BackboneSpec spec;
  spec.name = "example_small_cnn";
  spec.family = "cnn";
  spec.description = "Example plugin backbone: 3 strided convolutions, average-pooled, 32-d";
  spec.input_size = 224;
  spec.dim = 32;
  spec.outputs = {"pooled"};
  spec.channels_last = true;
  spec.weights_source = "any state dict with conv1/conv2/conv3 weights and biases";
  spec.create = [] { return std::make_unique<SmallCnnBackbone>(); };
  register_backbone(std::move(spec));
}

}  // namespace
}  // namespace histoflow::example_backbone

HISTOFLOW_PLUGIN("example_backbone", "Example: adds the backbone example_small_cnn to the torch encoder",
                 histoflow::example_backbone::register_example_backbone)
