#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "fuzz_targets.hpp"
#include "histoflow/torch_encoders/safetensors.hpp"
#include "histoflow/torch_encoders/torch_checkpoint.hpp"

namespace histoflow::fuzz {
namespace {

// The reader promises that every element a tensor's shape and strides reach lies in its storage: a tensor it
// accepts that reaches outside is a finding.
void check_inside(const torch_encoders::CheckpointTensor& t) {
  for (const auto extent : t.shape)
    if (extent == 0) return;
  const auto element = static_cast<std::int64_t>(torch_encoders::safetensors_dtype_size(t.dtype));  // same spelling
  std::int64_t last = t.offset;
  bool overflow = t.offset < 0 || t.strides.size() != t.shape.size() || !t.storage;
  for (std::size_t i = 0; i < t.shape.size() && !overflow; ++i) {
    std::int64_t reach = 0;
    overflow = t.shape[i] < 0 || t.strides[i] < 0 || __builtin_mul_overflow(t.shape[i] - 1, t.strides[i], &reach) ||
               __builtin_add_overflow(last, reach, &last);
  }
  std::int64_t end = 0;
  overflow = overflow || __builtin_add_overflow(last, 1, &end) || __builtin_mul_overflow(end, element, &end);
  if (overflow || static_cast<std::uint64_t>(end) > t.storage->size()) {
    std::fprintf(stderr, "fuzz_checkpoint: a tensor reaching outside its storage was accepted\n");
    std::abort();
  }
  volatile char first = (*t.storage)[static_cast<std::size_t>(t.offset * element)];
  volatile char final_byte = (*t.storage)[static_cast<std::size_t>(end - 1)];
  (void)first, (void)final_byte;
}

}  // namespace

// The same bytes as a checkpoint (a state dict, possibly nested) and as a saved tensor (CLAM's .pt features).
int fuzz_checkpoint(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto checkpoint = torch_encoders::read_torch_checkpoint(bytes, "fuzz.pth");
    for (const auto& [key, tensor] : checkpoint.tensors) check_inside(tensor);
  } catch (const std::exception&) {
  }
  try {
    check_inside(torch_encoders::read_torch_tensor(bytes, "fuzz.pt"));
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace histoflow::fuzz
