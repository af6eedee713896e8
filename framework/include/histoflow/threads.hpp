#pragma once
// The one rule that turns a `threads` setting into a thread count: a positive value is taken as it is;
// 0 (or less) means every core the machine reports, and at least one.
#include <algorithm>
#include <cstdint>
#include <thread>

namespace histoflow {

inline int resolve_thread_count(std::int64_t requested) {
  return requested > 0 ? static_cast<int>(requested) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace histoflow
