#pragma once
// Loss scaling for fp16 training, by torch.cuda.amp.GradScaler's rule (the official code's fp16_scaler): the loss
// is multiplied by the scale before the backward pass; the gradients are divided by it before clipping; a step
// whose gradients hold an inf or NaN is skipped and the scale halved; after `growth_interval` steps without one
// the scale doubles. Defaults are GradScaler's (2^16, x2, x0.5, 2000). The scale stays a power of two, so
// unscaling is exact.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

namespace histoflow::finetune {

class GradScaler {
 public:
  explicit GradScaler(double initial_scale = 65536.0, std::int64_t growth_interval = 2000);
  double scale() const { return scale_; }
  // Divides every defined gradient by the scale; true when all are finite (the step may be taken).
  bool unscale(const std::vector<torch::Tensor>& parameters) const;
  // After each step attempt: `stepped` is what unscale returned.
  void update(bool stepped);
  nlohmann::json state() const;  // {"grad_scale", "good_steps"}: part of the training checkpoint
  void restore(const nlohmann::json& state);

 private:
  double scale_;
  std::int64_t growth_interval_;
  std::int64_t good_steps_ = 0;  // steps since the scale last changed
};

}  // namespace histoflow::finetune
