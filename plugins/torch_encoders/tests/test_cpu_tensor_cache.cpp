// The CPU tensor cache: large blocks come back for reuse, without the kernel faulting their pages in again; small ones
// and those beyond the limit go back to malloc; oneDNN's raw allocations and empty tensors work through it.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <c10/core/CPUAllocator.h>

#include <cstring>

#include "histoflow/torch_encoders/cpu_tensor_cache.hpp"

using namespace histoflow::torch_encoders;

namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

}  // namespace

TEST_CASE("the CPU tensor cache hands a freed large block out again and keeps small ones out", "[torch][tensor_cache]") {
  c10::Allocator& cache = cpu_tensor_cache(std::size_t{64} << 20);
  void* first = nullptr;
  {
    c10::DataPtr block = cache.allocate(std::size_t{40} << 20);
    first = block.get();
    CHECK(reinterpret_cast<std::uintptr_t>(first) % 64 == 0);
  }
  CHECK(cpu_tensor_cache_counters(cache).cached_bytes == std::size_t{42} << 20);  // 40 MiB + header, in 2 MiB units
  {
    c10::DataPtr again = cache.allocate((std::size_t{40} << 20) - 1000);  // a slightly smaller request fits the block
    CHECK(again.get() == first);
    CHECK(cpu_tensor_cache_counters(cache).cached_bytes == 0);
  }
  // A much smaller request does not take the big block; small blocks are not cached.
  { c10::DataPtr medium = cache.allocate(std::size_t{4} << 20); CHECK(medium.get() != first); }
  { c10::DataPtr small = cache.allocate(1000); CHECK(small.get() != nullptr); }
  const CpuTensorCacheCounters counters = cpu_tensor_cache_counters(cache);
  CHECK(counters.reused == 1);
  CHECK(counters.allocated == 2);
  CHECK(counters.cached_bytes == (std::size_t{42} << 20) + (std::size_t{6} << 20));

  SECTION("freed blocks beyond the limit go back to the system") {
    c10::Allocator& small_cache = cpu_tensor_cache(std::size_t{8} << 20);
    { c10::DataPtr a = small_cache.allocate(std::size_t{6} << 20), b = small_cache.allocate(std::size_t{6} << 20); }
    CHECK(cpu_tensor_cache_counters(small_cache).cached_bytes == std::size_t{8} << 20);  // one of the two 8 MiB blocks
  }
  SECTION("a block not handed out again within 2,048 large allocations goes back to the system") {
    c10::Allocator& fresh = cpu_tensor_cache(std::size_t{64} << 20);
    { c10::DataPtr once = fresh.allocate(std::size_t{9} << 20); }  // say, an fp32 weight before the bf16 cast
    for (int i = 0; i < 2048 + 256; ++i) c10::DataPtr every_batch = fresh.allocate(std::size_t{3} << 20);
    CHECK(cpu_tensor_cache_counters(fresh).cached_bytes == std::size_t{4} << 20);  // only the block still in use
  }
  SECTION("raw allocations (oneDNN's scratch memory) and empty ones") {
    void* raw = cache.raw_allocate(std::size_t{3} << 20);
    std::memset(raw, 1, std::size_t{3} << 20);
    cache.raw_deallocate(raw);
    c10::DataPtr empty = cache.allocate(0);
    CHECK(empty.get() == nullptr);
  }
}

TEST_CASE("installed, the cache gives LibTorch's tensors memory whose pages are already there", "[torch][tensor_cache]") {
  install_cpu_tensor_cache();
  install_cpu_tensor_cache();  // once per process
  c10::Allocator* allocator = c10::GetCPUAllocator();
  const std::uint64_t reused_before = cpu_tensor_cache_counters(*allocator).reused;
  // 98 MiB, a ResNet-50 layer1 output at batch 32: above glibc's largest mmap threshold (32 MiB), so malloc would map it
  // afresh each time.
  const auto activation = [] { return torch::ones({32, 256, 56, 56}); };
  void* first = nullptr;
  { torch::Tensor a = activation(); first = a.data_ptr(); }
  const long faults_before = minor_faults();
  torch::Tensor b = activation();
  const long faults = minor_faults() - faults_before;
  CHECK(b.data_ptr() == first);
  CHECK(b.sum().item<double>() == 32.0 * 256 * 56 * 56);
  CHECK(cpu_tensor_cache_counters(*allocator).reused == reused_before + 1);
  // Fresh memory would fault in each of its 25,088 4-KiB pages again.
  CHECK(faults < 2500);
  const std::size_t cached = cpu_tensor_cache_counters(*allocator).cached_bytes;
  {
    CpuTensorCacheBypass loading;  // as the encoder loads its model: what is freed meanwhile is not kept
    b = torch::Tensor();
    CHECK(cpu_tensor_cache_counters(*allocator).cached_bytes == cached);
  }
}
