#pragma once
// Progress for long runs: a redrawn bar on a terminal, plain periodic lines otherwise.
#include <chrono>
#include <cstdint>

#include "histoflow/runtime.hpp"

namespace histoflow {

class ProgressReporter {
 public:
  ProgressReporter(ProgressMode mode, std::chrono::milliseconds line_interval, std::int64_t total);
  void update(std::uint64_t done, std::uint64_t started);
  void finish();

 private:
  void draw(std::uint64_t done, std::uint64_t started, bool final);
  ProgressMode mode_;
  std::chrono::milliseconds interval_;
  std::int64_t total_;  // -1 when unknown
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  std::uint64_t done_ = 0;
  std::uint64_t started_ = 0;
  bool drew_bar_ = false;
};

}  // namespace histoflow
