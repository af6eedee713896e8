#include "resnet.hpp"

namespace histoflow::torchenc {
namespace {

torch::nn::Conv2d conv(int in, int out, int kernel, int stride, int padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

struct BottleneckImpl : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  BottleneckImpl(int in, int planes, int stride) {
    conv1 = register_module("conv1", conv(in, planes, 1, 1, 0));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));  // stride on the 3x3: torchvision's v1.5
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", conv(planes, planes * 4, 1, 1, 0));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * 4));
    if (stride != 1 || in != planes * 4)
      downsample = register_module("downsample", torch::nn::Sequential(conv(in, planes * 4, 1, stride, 0),
                                                                       torch::nn::BatchNorm2d(planes * 4)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    // In-place activations and residual add, as torchvision does: less memory traffic per block.
    auto out = bn1(conv1(x)).relu_();
    out = bn2(conv2(out)).relu_();
    out = bn3(conv3(out));
    return out.add_(downsample ? downsample->forward(x) : x).relu_();
  }
};
TORCH_MODULE(Bottleneck);

struct ResNet50 : torch::nn::Module {
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  bool truncated;
  explicit ResNet50(bool truncated_) : truncated(truncated_) {
    conv1 = register_module("conv1", conv(3, 64, 7, 2, 3));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
    int in = 64;
    const auto stage = [&](const char* name, int planes, int blocks, int stride) {
      torch::nn::Sequential layer;
      for (int i = 0; i < blocks; ++i) {
        layer->push_back(Bottleneck(in, planes, i == 0 ? stride : 1));
        in = planes * 4;
      }
      return register_module(name, layer);
    };
    layer1 = stage("layer1", 64, 3, 1);
    layer2 = stage("layer2", 128, 4, 2);
    layer3 = stage("layer3", 256, 6, 2);
    if (!truncated) layer4 = stage("layer4", 512, 3, 2);
  }
  torch::Tensor forward(const torch::Tensor& images) {
    auto x = bn1(conv1(images)).relu_();
    x = torch::max_pool2d(x, 3, 2, 1);
    x = layer3->forward(layer2->forward(layer1->forward(x)));
    if (!truncated) x = layer4->forward(x);
    return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  }
};

class ResNetBackbone final : public Backbone {
 public:
  explicit ResNetBackbone(bool truncated) : net_(std::make_shared<ResNet50>(truncated)), truncated_(truncated) {}
  torch::nn::Module& module() override { return *net_; }
  BackboneOutput forward(const torch::Tensor& images) override {
    BackboneOutput out;
    out.pooled = net_->forward(images);
    return out;
  }
  // The ImageNet classifier, and layer4 when truncated: present in full checkpoints, unused here.
  bool ignorable_key(const std::string& key) const override {
    return key.rfind("fc.", 0) == 0 || (truncated_ && key.rfind("layer4.", 0) == 0);
  }

 private:
  std::shared_ptr<ResNet50> net_;
  bool truncated_;
};

}  // namespace

std::unique_ptr<Backbone> make_resnet50(bool truncated_after_layer3) { return std::make_unique<ResNetBackbone>(truncated_after_layer3); }

}  // namespace histoflow::torchenc
