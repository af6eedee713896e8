#pragma once
// Progress for long runs: a redrawn bar on a terminal, plain periodic lines otherwise. It counts source items
// (slides) and the packets of gated outputs (tiles), so one large slide still shows movement, and, at end of
// stream, the long work a stage reports (training folds, evaluation) with its own ETA.
#include <chrono>
#include <cstdint>
#include <string>

#include "histoflow/runtime.hpp"

namespace histoflow {

struct ProgressState {
  std::uint64_t items_done = 0;     // source items retired
  std::uint64_t items_started = 0;  // source items generated
  std::uint64_t tiles_done = 0;     // packets on gated outputs retired
  std::uint64_t tiles_seen = 0;     // packets on gated outputs emitted so far (admitted or waiting)
  // The stage that last reported long work (StageProgress), when any.
  std::string stage;
  std::string stage_what;
  double stage_fraction = -1;
  std::chrono::steady_clock::time_point stage_since;  // when it first reported
  bool end_of_stream = false;  // sources are done; stages are flushing
};

class ProgressReporter {
 public:
  ProgressReporter(ProgressMode mode, std::chrono::milliseconds line_interval, std::int64_t total);
  void update(const ProgressState& state);
  void finish();
  // The line that would be drawn now (tests read it).
  std::string line(const ProgressState& state, bool final) const;

 private:
  void draw(bool final);
  ProgressMode mode_;
  std::chrono::milliseconds interval_;
  std::int64_t total_;  // source items; -1 when unknown
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  ProgressState state_;
  bool drew_bar_ = false;
};

}  // namespace histoflow
