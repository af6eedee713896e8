#include "histoflow/torch_encoders/autocast.hpp"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <stdexcept>

// LibTorch 2.4 made autocast device-generic and deprecated the per-device calls that 1.13 has.
#define HISTOFLOW_DEVICE_GENERIC_AUTOCAST (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

namespace histoflow::torch_encoders {
namespace {

#if HISTOFLOW_DEVICE_GENERIC_AUTOCAST
bool is_on(c10::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
void turn(c10::DeviceType device, bool on) { at::autocast::set_autocast_enabled(device, on); }
torch::Dtype dtype_of(c10::DeviceType device) { return at::autocast::get_autocast_dtype(device); }
void set_dtype(c10::DeviceType device, torch::Dtype dtype) { at::autocast::set_autocast_dtype(device, dtype); }
#else
bool is_on(c10::DeviceType device) { return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void turn(c10::DeviceType device, bool on) {
  if (device == c10::DeviceType::CUDA) at::autocast::set_enabled(on);
  else at::autocast::set_cpu_enabled(on);
}
torch::Dtype dtype_of(c10::DeviceType device) {
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_dtype(c10::DeviceType device, torch::Dtype dtype) {
  if (device == c10::DeviceType::CUDA) at::autocast::set_autocast_gpu_dtype(dtype);
  else at::autocast::set_autocast_cpu_dtype(dtype);
}
#endif

c10::DeviceType checked(c10::DeviceType device, torch::Dtype dtype) {
  const bool cuda = device == c10::DeviceType::CUDA, cpu = device == c10::DeviceType::CPU;
  if (!(cuda && (dtype == torch::kBFloat16 || dtype == torch::kHalf)) && !(cpu && dtype == torch::kBFloat16))
    throw std::invalid_argument(std::string("autocast runs bf16 or fp16 on CUDA and bf16 on the CPU, not ") + c10::toString(dtype) +
                                " on " + c10::DeviceTypeName(device));
  return device;
}

}  // namespace

AutocastScope::AutocastScope(c10::DeviceType device, torch::Dtype dtype)
    : device_(checked(device, dtype)), was_enabled_(is_on(device)), previous_dtype_(dtype_of(device)) {
  set_dtype(device_, dtype);
  turn(device_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  // As torch.autocast's exit: the casts of weights cached during the scope go with the outermost scope.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  turn(device_, was_enabled_);
  set_dtype(device_, previous_dtype_);
}

bool autocast_enabled(c10::DeviceType device) { return is_on(device); }

}  // namespace histoflow::torch_encoders
