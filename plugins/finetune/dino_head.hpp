#pragma once
// DINOv2's projection head (dinov2/layers/dino_head.py): Linear-GELU-...-Linear to a bottleneck, L2
// normalisation, then a weight-normalised linear layer without bias onto the prototypes. Parameter names follow
// the official state dict: mlp.0/2/4.{weight,bias}, last_layer.weight_g, last_layer.weight_v.
#include <torch/torch.h>

namespace histoflow::finetune {

struct DinoHeadConfig {
  int prototypes = 65536;
  int hidden = 2048;
  int bottleneck = 256;
  int layers = 3;
};

class DinoHeadImpl : public torch::nn::Module {
 public:
  DinoHeadImpl(int in_dim, const DinoHeadConfig& config);
  // x: [rows, in_dim] in fp32, bf16 or fp16 (products in x's type, parameters stay fp32); returns [rows, prototypes]
  // in fp32, the type the losses take (the prototype layer accumulates bf16 products straight into it).
  torch::Tensor forward(const torch::Tensor& x);
  int prototypes() const { return config_.prototypes; }

 private:
  DinoHeadConfig config_;
  std::vector<torch::nn::Linear> linears_;
  torch::nn::Sequential mlp_{nullptr};
  std::shared_ptr<torch::nn::Module> last_layer_;
  torch::Tensor weight_g_, weight_v_;
};
TORCH_MODULE(DinoHead);

}  // namespace histoflow::finetune
