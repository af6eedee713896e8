#pragma once
// One run of a graph: the state shared by its stages' nodes (flow control, errors, cancellation) and the
// phases that Run::execute goes through. Private to the runtime; where each part lives:
//   run_execute.cpp     Run::execute, the orchestration of one run, and run_graph()
//   run_stages.cpp      creating, opening and closing the stages; their results, statistics and failures
//   run_resumption.cpp  which stages may skip an item because resumable stages restored its results
//   run_flow.cpp        keeping items moving: sources, the tile gate, stalls, draining, end-of-stream flushes
//   flow_nodes.cpp      one stage as flow-graph nodes (flow_nodes.hpp)
//   run_summary.cpp     run_summary.json and the printed summary
//   run_phases.cpp      a graph with `after` run as phases, one Run each
#include <tbb/flow_graph.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "flow_control.hpp"
#include "flow_nodes.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/runtime.hpp"
#include "histoflow/stage.hpp"
#include "histoflow/tracer.hpp"
#include "progress.hpp"

namespace histoflow::detail {

// What a stage reports of its long work (StageProgress); the progress line shows the latest report.
class NodeProgress final : public StageProgress {
 public:
  NodeProgress(std::string stage_id, std::atomic<const NodeProgress*>& latest) : stage_id_(std::move(stage_id)), latest_(latest) {}
  void report(const std::string& what, double fraction) override {
    {
      std::lock_guard lock(mutex_);
      what_ = what;
      fraction_ = fraction;
      if (!reported_) since_ = Clock::now();
      reported_ = true;
    }
    latest_.store(this);
  }
  void fill(ProgressState& state) const {
    std::lock_guard lock(mutex_);
    state.stage = stage_id_;
    state.stage_what = what_;
    state.stage_fraction = fraction_;
    state.stage_since = since_;
  }

 private:
  const std::string stage_id_;
  std::atomic<const NodeProgress*>& latest_;
  mutable std::mutex mutex_;
  std::string what_;
  double fraction_ = -1;
  Clock::time_point since_;
  bool reported_ = false;
};

// A stage's request to end the input (StreamControl): sources stop asking for items; the run then ends as usual.
// Also where stages see that the run was cancelled.
class RunStream final : public StreamControl {
 public:
  explicit RunStream(const std::atomic<bool>* cancel) : cancel_(cancel) {}
  void end_sources(const std::string& reason) override {
    std::lock_guard lock(mutex_);
    if (!ended_.load()) reason_ = reason;
    ended_.store(true);
  }
  bool sources_ended() const override { return ended_.load(); }
  bool cancelled() const override { return cancel_ && cancel_->load(); }
  std::string reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
  }

 private:
  const std::atomic<bool>* cancel_;  // RunOptions::cancel; may be null
  std::atomic<bool> ended_{false};
  mutable std::mutex mutex_;
  std::string reason_;
};

class Run {
 public:
  Run(const GraphSpec& spec, const RunOptions& options)
      : spec_(spec), options_(options), gate_(spec.run.max_in_flight), tile_gate_(spec.run.max_tiles_in_flight), stream_(options.cancel) {}
  RunResult execute();
  // A packet for a gated output waits here until the tile gate admits it.
  void enqueue_gated(StageNode& node, std::size_t port, Envelope envelope);

  // Shared with nodes.
  std::atomic<std::int64_t> active{0};  // envelopes queued or being processed anywhere
  std::atomic<bool> stop{false};
  Tracer* tracer = nullptr;
  ErrorLog errors;
  void record_error(const StageNode& node, const Packet* packet, std::uint64_t sequence, const std::string& message);
  void fail(const std::string& message);
  // A stage's long work stopped because the run was cancelled (RunCancelled): the run ends cancelled.
  void stop_cancelled();
  // Asks the resumable stages behind a source port whether this item's results exist (they emit them).
  std::uint64_t restore_item(StageNode& source, std::size_t port, const Envelope& item);
  // Items of shardable sources that lead to resumable results are locked while in flight, so that two processes
  // sharing the output folder never compute one item twice (run_resumption.cpp).
  bool locks_items(const StageNode& source, std::size_t port) const {
    return source.contract.shardable && source.port_resumable[port] != 0;
  }
  // The item's lock, or nullopt (with a warning) when another process holds it: the item is then left to it.
  std::optional<ItemLock> lock_item(StageNode& source, const Packet& item);

 private:
  void create_stages();
  void plan_resumption();
  void record_shard_items();
  void open_stages();
  void close_stages();
  void collect_results(RunResult& result);
  StageStats stats_of(std::size_t index) const;
  void report_progress(ProgressReporter& progress);
  void drive_source(StageNode& node);
  void feed_gated();
  bool quiescent() const { return sources_running_.load() == 0 && pending_total_.load() == 0 && active.load() == 0; }
  void check_stall();
  void monitor();
  void drain();
  void flush_all();

  const GraphSpec& spec_;
  const RunOptions& options_;
  // Gates are declared before everything that holds tickets (pending packets, the graph), so tickets
  // still held when a cancelled run is torn down return to a gate that is alive.
  Gate gate_;       // source items
  Gate tile_gate_;  // packets on gated outputs
  RunStream stream_;  // before the stages, which hold its address
  struct PendingPacket {
    StageNode* node = nullptr;
    std::size_t port = 0;
    Envelope envelope;
  };
  std::mutex pending_mutex_;
  std::condition_variable pending_cv_;
  std::deque<PendingPacket> pending_;
  std::atomic<std::int64_t> pending_total_{0};  // queued here or being admitted
  std::atomic<bool> feeder_exit_{false};
  std::uint64_t retired_at_last_check_ = 0;
  int stalled_checks_ = 0;
  std::mutex fail_mutex_;
  std::string fatal_message_;
  std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> generated_{0};
  std::atomic<int> sources_running_{0};
  std::unique_ptr<tbb::flow::graph> graph_;
  std::vector<std::unique_ptr<StageNode>> nodes_;
  std::vector<StageNode*> resumable_;  // by bit position
  std::unique_ptr<Tracer> tracer_;
  std::vector<std::unique_ptr<NodeProgress>> progress_;  // per stage, made before the stages
  std::atomic<const NodeProgress*> latest_progress_{nullptr};
  std::atomic<bool> end_of_stream_{false};
  std::atomic<bool> progress_exit_{false};
};

// A graph of several phases (GraphSpec::phases > 1): one Run per phase, in order, with one summary.
RunResult run_phases(const GraphSpec& spec, const RunOptions& options);

}  // namespace histoflow::detail
