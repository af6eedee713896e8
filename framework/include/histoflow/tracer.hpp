#pragma once
// Chrome trace event output and its per-stage summary.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace histoflow {

// Records spans and counters into per-thread buffers; write() produces Chrome trace JSON.
// The runtime holds a null Tracer pointer when tracing is off, so an untraced call costs one branch.
class Tracer {
 public:
  struct StageInfo {
    std::string id;
    std::string type;
    int concurrency = 1;  // 0: unlimited
    int rank = 0;         // position in the graph's topological order, for display
  };

  explicit Tracer(std::vector<StageInfo> stages);
  ~Tracer();

  using Clock = std::chrono::steady_clock;
  // What a span covers besides item calls: construction and open() (start-up: model loading), the
  // end-of-stream flush (busy time, but not an item call) and close().
  enum class Phase : std::uint8_t { Call, Create, Open, Flush, Close };
  // One stage call on `batch_size` packets (for a source: the packets one generate() emitted).
  void span(std::size_t stage, Clock::time_point begin, Clock::time_point end, std::string items,
            std::int64_t batch_size);
  void phase_span(std::size_t stage, Clock::time_point begin, Clock::time_point end, Phase phase);
  // Packets that reached the stage and wait for their call to start (input buffer, ordering, partial batch).
  void counter(std::size_t stage, std::int64_t queue_depth);
  // Packets the stage emitted on gated outputs that wait for the tile budget ([run] max_tiles_in_flight).
  void backlog(std::size_t stage, std::int64_t waiting);
  void finish();  // marks the end of the run (wall time)
  void write(const std::filesystem::path& file) const;

 private:
  struct Event;
  struct ThreadBuffer;
  ThreadBuffer& local_buffer();

  std::vector<StageInfo> stages_;
  Clock::time_point start_;
  Clock::time_point end_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers_;
  std::atomic<std::uint32_t> next_thread_index_{0};
  std::uint64_t id_;  // distinguishes tracers in thread-local lookups
};

struct StageTraceSummary {
  std::string id;
  std::string type;
  int concurrency = 1;
  std::uint64_t calls = 0;
  std::uint64_t items = 0;
  double busy_seconds = 0;
  double startup_seconds = 0;  // construction and open() (model loading)
  double close_seconds = 0;
  std::int64_t max_queue = 0;  // largest `queue <stage>` depth seen
  double mean_queue = 0;       // `queue <stage>` depth averaged over the wall time (time-weighted)
  double utilisation = 0;   // busy / (wall * usable concurrency)
  double mean_ms = 0;
  double p95_ms = 0;
  double items_per_second = 0;
  // When the stage was busy (item calls, flushes, start-up, close): [begin, end) in seconds from the trace's start,
  // spans that overlap or lie closer than 1/2000 of the wall time merged (a timeline's resolution).
  std::vector<std::pair<double, double>> busy_spans;
};

struct TraceSummary {
  double wall_seconds = 0;
  std::vector<StageTraceSummary> stages;
  std::string bottleneck;  // stage id with the highest utilisation
};

TraceSummary summarize_trace(const std::filesystem::path& file);  // throws with the file name on bad JSON
std::string format_trace_summary(const TraceSummary& summary);

}  // namespace histoflow
