#include "dino_head.hpp"

#include <cmath>

#include "histoflow/torch_encoders/cpu_linear.hpp"
#include "histoflow/torch_encoders/vit.hpp"

namespace histoflow::finetune {
namespace F = torch::nn::functional;
namespace {

// torch.nn.init.trunc_normal_ (LibTorch 1.13 has none): inverse-CDF sampling inside [low, high].
void trunc_normal(torch::Tensor& t, double mean, double std, double low, double high) {
  const auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = cdf((low - mean) / std), u = cdf((high - mean) / std);
  t.uniform_(2 * l - 1, 2 * u - 1).erfinv_().mul_(std * std::sqrt(2.0)).add_(mean).clamp_(low, high);
}

}  // namespace

DinoHeadImpl::DinoHeadImpl(int in_dim, const DinoHeadConfig& config) : config_(config) {
  if (config.layers < 1 || config.prototypes < 1 || config.bottleneck < 1 || (config.layers > 1 && config.hidden < 1))
    throw std::invalid_argument("a DINO head needs at least one layer and positive widths");
  // The Sequential keeps the official indices: Linear at 0, 2, 4, ..., GELU in between.
  mlp_ = torch::nn::Sequential();
  const auto add_linear = [&](int from, int to) {
    torch::nn::Linear linear(torch::nn::LinearOptions(from, to));
    // Official init: truncated normal (std 0.02, cut at +-2) for weights, zero biases.
    torch::NoGradGuard no_grad;
    trunc_normal(linear->weight, 0.0, 0.02, -2.0, 2.0);
    torch::nn::init::zeros_(linear->bias);
    linears_.push_back(linear);
    mlp_->push_back(linear);
  };
  if (config.layers == 1) {
    add_linear(in_dim, config.bottleneck);
  } else {
    add_linear(in_dim, config.hidden);
    for (int i = 0; i < config.layers - 2; ++i) {
      mlp_->push_back(torch::nn::GELU());
      add_linear(config.hidden, config.hidden);
    }
    mlp_->push_back(torch::nn::GELU());
    add_linear(config.hidden, config.bottleneck);
  }
  register_module("mlp", mlp_);
  // weight_norm(nn.Linear(bottleneck, prototypes, bias=False)) with weight_g filled with 1: v starts as the
  // default nn.Linear init (uniform +-1/sqrt(fan_in)).
  last_layer_ = std::make_shared<torch::nn::Module>();
  const double bound = 1.0 / std::sqrt(static_cast<double>(config.bottleneck));
  weight_g_ = last_layer_->register_parameter("weight_g", torch::ones({config.prototypes, 1}));
  weight_v_ = last_layer_->register_parameter("weight_v", torch::empty({config.prototypes, config.bottleneck}).uniform_(-bound, bound));
  register_module("last_layer", last_layer_);
}

torch::Tensor DinoHeadImpl::forward(const torch::Tensor& input) {
  const auto type = input.scalar_type();
  auto x = input;
  for (std::size_t i = 0; i < linears_.size(); ++i) {
    if (i > 0) x = torch::gelu(x);
    const auto& linear = linears_[i];
    x = torch_encoders::linear(x, torch_encoders::cast_parameter(linear->weight, type), torch_encoders::cast_parameter(linear->bias, type));
  }
  const double eps = type == torch::kHalf ? 1e-6 : 1e-12;
  x = F::normalize(x, F::NormalizeFuncOptions().dim(-1).p(2).eps(eps));
  // torch.nn.utils.weight_norm (dim 0): w = g * v / ||v|| per output row, by the fused kernel and its backward
  // (PyTorch takes the composite path on the CPU: norm, division and product, each with its own backward).
  const auto weight = std::get<0>(at::_weight_norm_interface(weight_v_, weight_g_, 0));
  return torch_encoders::linear_to_fp32(x, weight);
}

}  // namespace histoflow::finetune
