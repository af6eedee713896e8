#pragma once
// glibc malloc's thresholds, held fixed for a long run.
//
// glibc raises its mmap threshold to the size of each mapped block that is freed (up to 32 MiB) and its trim
// threshold to twice that. After a few such frees (a tissue mask, a checkpoint's buffer), blocks of up to 32 MiB
// come from malloc's arenas, which then keep up to 64 MiB of freed memory each and fragment as OpenSlide's tile
// cache and the tile buffers churn: a run's peak memory grew with slide size (two 40,000 x 30,000 slides 1,041 MiB,
// two small ones 921). Held at 1 MiB (mmap) and glibc's default trim threshold, memory follows what is in use.
// Blocks of 1 MiB and more are few: LibTorch's come from the encoders' own cache (torch_encoders/cpu_tensor_cache.hpp).
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace histoflow {

// The mmap threshold to hold, in bytes: 1 MiB unless the user tuned malloc (MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_, or a malloc tunable in GLIBC_TUNABLES) or set HISTOFLOW_MALLOC_THRESHOLDS=dynamic.
std::optional<std::size_t> choose_mmap_threshold(const std::function<std::optional<std::string>(const std::string&)>& get_env);

// Call first in main. Does nothing where malloc is not glibc's, or under AddressSanitizer (its own allocator).
void hold_malloc_thresholds();

}  // namespace histoflow
