#include "resident_memory.hpp"

#include <unistd.h>

#include <fstream>

namespace histoflow::mil {

std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
}

ResidentMemorySampler::ResidentMemorySampler(std::chrono::milliseconds interval) : start_(resident_bytes()) {
  peak_ = start_;
  thread_ = std::thread([this, interval] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval, [this] { return stop_; })) sample();
  });
}

ResidentMemorySampler::~ResidentMemorySampler() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ResidentMemorySampler::sample() {
  const std::int64_t now = resident_bytes();
  std::int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
}

std::int64_t ResidentMemorySampler::peak_bytes() {
  sample();
  return peak_.load();
}

std::int64_t ResidentMemorySampler::restart_window() {
  const std::int64_t peak = peak_bytes();
  peak_ = resident_bytes();
  return peak;
}

}  // namespace histoflow::mil
