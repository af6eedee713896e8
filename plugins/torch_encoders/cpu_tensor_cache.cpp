#include "histoflow/torch_encoders/cpu_tensor_cache.hpp"

#include <sys/mman.h>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>

namespace histoflow::torch_encoders {
namespace {

constexpr std::size_t kHeader = 64;             // before each block's data; keeps c10's 64-byte alignment
constexpr std::size_t kLarge = std::size_t{1} << 20;  // from here on, blocks are cached
constexpr std::size_t kUnit = std::size_t{2} << 20;   // large blocks in huge-page units
// A freed block not handed out again within this many large allocations goes back to the system. A batch makes tens
// (ResNet-50) to hundreds (ViT-L) of them, so what every batch uses stays; what a one-off used (a slide's last,
// partial batch) does not stay for the whole run.
constexpr std::uint64_t kIdleAllocations = 2048;

class CachingCpuAllocator;

std::atomic<int> bypasses{0};  // CpuTensorCacheBypass objects alive

// Written in the header of every block: who keeps it once freed (null: malloc's) and how big it is.
struct BlockHeader {
  CachingCpuAllocator* owner;
  std::size_t capacity;
  std::uint64_t freed_at;  // the allocator's count of large allocations when it was last freed
};

void release(void* data);
void unmap_block(BlockHeader* block) { munmap(block, block->capacity); }

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(std::size_t limit) : limit_(limit) {}

  // LibTorch 1.13 declares allocate const, 2.3 and later non-const with copy_data beside it: both are defined (without
  // `override`) so that this builds against either.
  c10::DataPtr allocate(std::size_t bytes) const { return const_cast<CachingCpuAllocator*>(this)->allocate_block(bytes); }
  c10::DataPtr allocate(std::size_t bytes) { return allocate_block(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  // raw_allocate (oneDNN's scratch memory) needs the context to be the data pointer, which it is.
  c10::DeleterFnPtr raw_deleter() const { return &release; }

  void give_back(BlockHeader* block) {
    {
      std::lock_guard lock(mutex_);
      block->freed_at = reused_ + allocated_;
      if (bypasses.load(std::memory_order_relaxed) == 0 && cached_ + block->capacity <= limit_) {
        free_.emplace(block->capacity, block);
        cached_ += block->capacity;
        return;
      }
    }
    unmap_block(block);
  }

  CpuTensorCacheCounters counters() {
    std::lock_guard lock(mutex_);
    return {reused_, allocated_, cached_, limit_};
  }

 private:
  c10::DataPtr allocate_block(std::size_t bytes) {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (bytes == 0) return {nullptr, nullptr, &release, cpu};
    BlockHeader* block = bytes + kHeader < kLarge ? small_block(bytes + kHeader) : large_block(bytes);
    void* data = reinterpret_cast<char*>(block) + kHeader;
    return {data, data, &release, cpu};
  }

  BlockHeader* large_block(std::size_t bytes) {
    const std::size_t capacity = (bytes + kHeader + kUnit - 1) / kUnit * kUnit;
    {
      std::lock_guard lock(mutex_);
      const std::uint64_t now = reused_ + allocated_;
      if (now % 256 == 0) release_idle(now);  // rarely, and under the lock: a sweep frees a few blocks at most
      // The smallest free block that fits, unless it is much bigger: a batch's tensors come back in the same sizes.
      auto it = free_.lower_bound(capacity);
      if (it != free_.end() && it->first <= capacity + capacity / 4) {
        BlockHeader* block = it->second;
        cached_ -= it->first;
        free_.erase(it);
        ++reused_;
        return block;
      }
      ++allocated_;
    }
    return map_block(capacity);
  }

  static BlockHeader* small_block(std::size_t capacity) {
    void* memory = nullptr;
    if (posix_memalign(&memory, kHeader, capacity) != 0)
      throw std::bad_alloc();  // LibTorch reports it as an out-of-memory error, with the size it asked for
    return new (memory) BlockHeader{nullptr, capacity, 0};
  }

  // Large blocks are mapped here rather than taken from malloc: freeing a mapped chunk raises glibc's mmap threshold
  // to its size (up to 32 MiB), after which malloc serves such sizes from its arenas, which fragment and keep what a
  // run once used (peak RSS grew with slide size: 1,041 MiB on two 40k x 30k slides, 921 on two small ones). munmap
  // gives a returned block's memory back for certain.
  BlockHeader* map_block(std::size_t capacity) {
    const std::size_t span = capacity + kUnit;  // room to align the block to a huge page
    void* mapped = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(mapped);
    const std::uintptr_t aligned = (start + kUnit - 1) / kUnit * kUnit;
    if (aligned > start) munmap(mapped, aligned - start);
    if (start + span > aligned + capacity) munmap(reinterpret_cast<void*>(aligned + capacity), start + span - aligned - capacity);
    auto* block = reinterpret_cast<void*>(aligned);
    madvise(block, capacity, MADV_HUGEPAGE);  // fewer faults and TLB misses where the kernel allows it; a hint only
    return new (block) BlockHeader{this, capacity, 0};
  }

  // Gives the blocks idle for kIdleAllocations large allocations back to the system (the caller holds the lock).
  void release_idle(std::uint64_t now) {
    for (auto it = free_.begin(); it != free_.end();) {
      if (it->second->freed_at + kIdleAllocations <= now) {
        cached_ -= it->first;
        unmap_block(it->second);
        it = free_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::mutex mutex_;
  std::multimap<std::size_t, BlockHeader*> free_;  // by capacity
  std::size_t cached_ = 0;
  const std::size_t limit_;
  std::uint64_t reused_ = 0, allocated_ = 0;
};

void release(void* data) {
  if (data == nullptr) return;
  auto* block = reinterpret_cast<BlockHeader*>(static_cast<char*>(data) - kHeader);
  if (block->owner != nullptr)
    block->owner->give_back(block);
  else
    std::free(block);
}

std::size_t limit_from_environment() {
  const char* text = std::getenv("HISTOFLOW_CPU_TENSOR_CACHE_MIB");
  if (text == nullptr || *text == '\0') return std::size_t{2048} << 20;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(text, &end, 10);
  if (*end != '\0' || text[0] == '-')
    throw std::invalid_argument(std::string("HISTOFLOW_CPU_TENSOR_CACHE_MIB must be a number of MiB, not '") + text + "'");
  return static_cast<std::size_t>(mib) << 20;
}

}  // namespace

c10::Allocator& cpu_tensor_cache(std::size_t limit_bytes) {
  return *new CachingCpuAllocator(limit_bytes);  // never deleted: tensors it allocated may outlive any owner
}

CpuTensorCacheCounters cpu_tensor_cache_counters(c10::Allocator& cache) {
  return dynamic_cast<CachingCpuAllocator&>(cache).counters();
}

void install_cpu_tensor_cache() {
  static std::once_flag once;
  std::call_once(once, [] {
    const std::size_t limit = limit_from_environment();
    // Priority 1 outranks LibTorch's default CPU allocator (0); tensors it already made keep their own deleter.
    if (limit > 0) c10::SetCPUAllocator(&cpu_tensor_cache(limit), 1);
  });
}

CpuTensorCacheBypass::CpuTensorCacheBypass() { ++bypasses; }
CpuTensorCacheBypass::~CpuTensorCacheBypass() { --bypasses; }

}  // namespace histoflow::torch_encoders
