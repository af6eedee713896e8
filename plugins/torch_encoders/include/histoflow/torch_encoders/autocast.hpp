#pragma once
// Mixed precision as torch.autocast does it, from C++: while an AutocastScope lives, matrix products and
// convolutions on its device type run in the reduced precision on fp32 weights, while normalisations, softmax
// and reductions stay in fp32. LibTorch 1.13 and 2.x spell these calls differently; this is the one place that
// knows both.
#include <torch/torch.h>

namespace histoflow::torch_encoders {

class AutocastScope {
 public:
  // kCUDA with kBFloat16 or kHalf, or kCPU with kBFloat16. The state is the calling thread's; the previous one
  // comes back when the scope ends, and the cache of weight casts is cleared when the outermost scope ends.
  AutocastScope(c10::DeviceType device, torch::Dtype dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool was_enabled_;
  torch::Dtype previous_dtype_;
};

// Whether autocast is on for this device type in the calling thread.
bool autocast_enabled(c10::DeviceType device);

}  // namespace histoflow::torch_encoders
