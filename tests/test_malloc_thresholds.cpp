#include <catch2/catch.hpp>

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "histoflow/malloc_thresholds.hpp"
#include "support/fake_env.hpp"

using histoflow::choose_mmap_threshold;
using histoflow::testing::env_of;

TEST_CASE("malloc's mmap threshold is held at 1 MiB unless the user tuned malloc", "[malloc]") {
  CHECK(choose_mmap_threshold(env_of({})) == std::size_t{1} << 20);
  CHECK(choose_mmap_threshold(env_of({{"GLIBC_TUNABLES", "glibc.rtld.nns=2"}})) == std::size_t{1} << 20);
  CHECK_FALSE(choose_mmap_threshold(env_of({{"MALLOC_MMAP_THRESHOLD_", "65536"}})));
  CHECK_FALSE(choose_mmap_threshold(env_of({{"MALLOC_TRIM_THRESHOLD_", "0"}})));
  CHECK_FALSE(choose_mmap_threshold(env_of({{"GLIBC_TUNABLES", "glibc.malloc.arena_max=2"}})));
  CHECK_FALSE(choose_mmap_threshold(env_of({{"HISTOFLOW_MALLOC_THRESHOLDS", "dynamic"}})));
}

TEST_CASE("held thresholds: a 2 MiB block is still mapped after an 8 MiB mapped block was freed", "[malloc]") {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("GLIBC_TUNABLES") ||
      std::getenv("HISTOFLOW_MALLOC_THRESHOLDS")) {
    WARN("malloc tuned from the environment: not tested");
    return;
  }
  histoflow::hold_malloc_thresholds();
  // Left to itself, glibc raises its mmap threshold to 8 MiB on this free, and the 2 MiB block comes from the heap.
  auto* big = static_cast<volatile char*>(std::malloc(std::size_t{8} << 20));
  big[0] = 1;
  std::free(const_cast<char*>(big));
  const auto mapped_before = mallinfo2().hblks;
  auto* block = static_cast<volatile char*>(std::malloc(std::size_t{2} << 20));
  block[0] = 1;
  CHECK(mallinfo2().hblks == mapped_before + 1);
  std::free(const_cast<char*>(block));
#else
  SUCCEED("not glibc's malloc, or AddressSanitizer's: nothing is held");
#endif
}
