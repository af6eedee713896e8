#pragma once
// The process's resident memory, sampled in the background: what training really holds at its peak. The
// process-wide high-water mark (ru_maxrss) cannot say that once an earlier stage (the encoders) set a higher
// peak, and resetting it would falsify the run summary's peak_rss_mb.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace histoflow::mil {

// Resident set size now (/proc/self/statm), in bytes; 0 where it cannot be read.
std::int64_t resident_bytes();

class ResidentMemorySampler {
 public:
  // Starts sampling every `interval` (transient peaks of a forward pass last far longer).
  explicit ResidentMemorySampler(std::chrono::milliseconds interval = std::chrono::milliseconds(10));
  ~ResidentMemorySampler();
  ResidentMemorySampler(const ResidentMemorySampler&) = delete;
  ResidentMemorySampler& operator=(const ResidentMemorySampler&) = delete;

  std::int64_t start_bytes() const { return start_; }  // when sampling began
  std::int64_t peak_bytes();                           // highest sample since the start or the last restart_window()
  std::int64_t restart_window();                       // returns peak_bytes() and starts a new window

 private:
  void sample();
  std::int64_t start_ = 0;
  std::atomic<std::int64_t> peak_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace histoflow::mil
