#include "grad_scaler.hpp"

namespace histoflow::finetune {

GradScaler::GradScaler(double initial_scale, std::int64_t growth_interval) : scale_(initial_scale), growth_interval_(growth_interval) {}

bool GradScaler::unscale(const std::vector<torch::Tensor>& parameters) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> finite;  // one flag per gradient, read once: a single device sync per step
  for (const auto& p : parameters) {
    if (!p.grad().defined()) continue;
    auto grad = p.grad();
    grad.div_(scale_);
    finite.push_back(torch::isfinite(grad).all());
  }
  return finite.empty() || torch::stack(finite).all().item<bool>();
}

void GradScaler::update(bool stepped) {
  if (!stepped) {
    scale_ *= 0.5;
    good_steps_ = 0;
  } else if (++good_steps_ == growth_interval_) {
    scale_ *= 2.0;
    good_steps_ = 0;
  }
}

nlohmann::json GradScaler::state() const { return {{"grad_scale", scale_}, {"good_steps", good_steps_}}; }

void GradScaler::restore(const nlohmann::json& state) {
  scale_ = state.at("grad_scale").get<double>();
  good_steps_ = state.at("good_steps").get<std::int64_t>();
}

}  // namespace histoflow::finetune
