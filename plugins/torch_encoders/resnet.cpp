#include "resnet.hpp"

#include "histoflow/torch_encoders/autocast.hpp"

namespace histoflow::torch_encoders {
namespace {

torch::nn::Conv2d conv(int in, int out, int kernel, int stride, int padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

// A convolution with the inference-mode BatchNorm after it folded in: BN(conv(x, W)) = conv(x, s W) + (beta - s mu),
// s = gamma / sqrt(var + eps). One pass over the activations instead of two.
//
// On the CPU the folded weights are also kept in oneDNN's own blocked layout, reordered once (`packed`): there the
// network runs on oneDNN tensors from the stem to the pooling, so no convolution reorders its weights or its
// activations again, batch after batch (what TorchScript's optimize_for_inference does; 2-4% more images/s for
// resnet50_trunc fp32 on 2 cores, docs/encoders.md).
struct FoldedConv {
  torch::Tensor weight, bias, packed;
  std::vector<std::int64_t> stride, padding;

  FoldedConv() = default;
  FoldedConv(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn)
      : stride(conv->options.stride()->begin(), conv->options.stride()->end()), padding(2, conv->weight.size(-1) / 2) {  // ResNet pads each kernel by half its size
    torch::NoGradGuard no_grad;
    const auto scale = bn->weight.to(torch::kDouble) / (bn->running_var.to(torch::kDouble) + bn->options.eps()).sqrt();
    weight = (conv->weight.to(torch::kDouble) * scale.view({-1, 1, 1, 1})).to(conv->weight.dtype());
    bias = (bn->bias.to(torch::kDouble) - bn->running_mean.to(torch::kDouble) * scale).to(conv->weight.dtype());
  }
  bool defined() const { return weight.defined(); }
  void to(torch::Device device, torch::Dtype dtype, bool channels_last, bool onednn) {
    weight = weight.to(device, dtype);
    if (channels_last) weight = weight.contiguous(torch::MemoryFormat::ChannelsLast);
    bias = bias.to(device, dtype);
    if (onednn) packed = at::mkldnn_reorder_conv2d_weight(weight.contiguous().to_mkldnn(), padding, stride, {1, 1}, 1);
  }
  torch::Tensor operator()(const torch::Tensor& x) const {
    if (x.is_mkldnn()) return at::mkldnn_convolution(x, packed, bias, padding, stride, {1, 1}, 1);
    return torch::conv2d(x, weight, bias, stride, padding);
  }
};

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
    if (folded[0].defined()) {
      auto out = folded[2](folded[1](folded[0](x).relu_()).relu_());
      return out.add_(folded[3].defined() ? folded[3](x) : x).relu_();
    }
    // In-place activations and residual add, as torchvision does: less memory traffic per block.
    auto out = bn1(conv1(x)).relu_();
    out = bn2(conv2(out)).relu_();
    out = bn3(conv3(out));
    return out.add_(downsample ? downsample->forward(x) : x).relu_();
  }
  void fold_batch_norms() {
    folded = {FoldedConv(conv1, bn1), FoldedConv(conv2, bn2), FoldedConv(conv3, bn3), FoldedConv()};
    if (downsample)
      folded[3] = FoldedConv(torch::nn::Conv2d(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(downsample->ptr(0))),
                             torch::nn::BatchNorm2d(std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(downsample->ptr(1))));
  }
  std::array<FoldedConv, 4> folded;  // conv1..3 and the downsample, once prepared for inference
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
    // Under CPU autocast the products must run in bf16, which oneDNN tensors would bypass: the plain path then.
    const bool on_onednn = onednn && !autocast_enabled(c10::DeviceType::CPU);
    auto x = on_onednn ? images.to_mkldnn() : images;
    x = folded_stem.defined() ? folded_stem(x).relu_() : bn1(conv1(x)).relu_();
    x = torch::max_pool2d(x, 3, 2, 1);
    x = layer3->forward(layer2->forward(layer1->forward(x)));
    if (!truncated) x = layer4->forward(x);
    x = torch::adaptive_avg_pool2d(x, {1, 1});
    return (on_onednn ? x.to_dense() : x).flatten(1);
  }
  std::vector<Bottleneck> blocks() {
    std::vector<Bottleneck> all;
    for (auto* layer : {&layer1, &layer2, &layer3, &layer4})
      if (*layer)
        for (auto& block : **layer) all.push_back(Bottleneck(block.ptr<BottleneckImpl>()));
    return all;
  }
  FoldedConv folded_stem;
  bool onednn = false;  // prepared for inference on the CPU: runs on oneDNN tensors
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
  // Inference only: the BatchNorms are folded into their convolutions in double precision, from the loaded
  // weights, before the conversion to the target precision. The module keeps its parameters (and state dict).
  void prepare(torch::Device device, torch::Dtype dtype, bool channels_last) override {
    Backbone::prepare(torch::kCPU, torch::kFloat, false);  // eval mode; the folding reads float weights
    net_->onednn = device.is_cpu() && dtype == torch::kFloat && at::hasMKLDNN();
    net_->folded_stem = FoldedConv(net_->conv1, net_->bn1);
    net_->folded_stem.to(device, dtype, channels_last, net_->onednn);
    for (auto& block : net_->blocks()) {
      block->fold_batch_norms();
      for (auto& f : block->folded)
        if (f.defined()) f.to(device, dtype, channels_last, net_->onednn);
    }
    Backbone::prepare(device, dtype, channels_last);
  }

 private:
  std::shared_ptr<ResNet50> net_;
  bool truncated_;
};

}  // namespace

std::unique_ptr<Backbone> make_resnet50(bool truncated_after_layer3) { return std::make_unique<ResNetBackbone>(truncated_after_layer3); }

}  // namespace histoflow::torch_encoders
