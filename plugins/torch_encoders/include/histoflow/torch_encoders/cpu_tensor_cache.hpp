#pragma once
// LibTorch's CPU allocator, with the memory of large tensors kept for reuse.
//
// glibc serves each allocation above 32 MiB (a ResNet-50 activation at batch 32 is 100 MB) with a fresh mmap and
// returns it with munmap on free, so every batch the kernel faults in and zeroes the same pages again: 14 million
// page faults and 38 s of system time in a 94 s resnet50_trunc run on 2 cores. This allocator keeps freed blocks of
// 1 MiB and more (mapped by itself in 2 MiB units, on transparent huge pages where the kernel offers them, and
// unmapped when returned, so that its frees do not move glibc's thresholds) and hands them out again, as PyTorch's
// CUDA allocator does on the GPU; smaller blocks go to malloc as before. A block not handed out again
// within 2,048 large allocations (several batches) goes back to the system. It is process-wide (LibTorch has one CPU
// allocator) and installed once, by the first CPU encoder.
#include <cstddef>
#include <cstdint>

namespace c10 {
struct Allocator;
}

namespace histoflow::torch_encoders {

struct CpuTensorCacheCounters {
  std::uint64_t reused = 0;       // large allocations served from the cache
  std::uint64_t allocated = 0;    // large allocations that needed new memory
  std::size_t cached_bytes = 0;   // freed memory held for reuse now
  std::size_t limit_bytes = 0;    // at most this much is held; beyond it a freed block goes back to the system
};

// The allocator itself (not installed): for tests. limit_bytes: the most freed memory it holds.
c10::Allocator& cpu_tensor_cache(std::size_t limit_bytes);
CpuTensorCacheCounters cpu_tensor_cache_counters(c10::Allocator& cache);

// Makes it LibTorch's CPU allocator, once per process; later calls do nothing. The limit comes from the
// HISTOFLOW_CPU_TENSOR_CACHE_MIB environment variable (default 2048; 0 leaves LibTorch's allocator in place).
void install_cpu_tensor_cache();

// While one exists, freed blocks go back to the system instead of into the cache. For model loading: what it frees
// (a ViT-L's 1.2 GB of fp32 weights as they are cast to bf16, a checkpoint's tensors) is not asked for again, and
// cached it would add to the peak (a uni bf16 run peaked at 2.4 GB instead of 1.6).
class CpuTensorCacheBypass {
 public:
  CpuTensorCacheBypass();
  ~CpuTensorCacheBypass();
  CpuTensorCacheBypass(const CpuTensorCacheBypass&) = delete;
  CpuTensorCacheBypass& operator=(const CpuTensorCacheBypass&) = delete;
};

}  // namespace histoflow::torch_encoders
