#pragma once
// The interface every stage implements, and what the framework hands it.
//
// Lifecycle: construct (from StageContext) -> open() -> process()/generate() many times -> flush() -> close().
// A stage is called from one thread at a time unless its contract declares more concurrency.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "histoflow/contract.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/packet.hpp"
#include "histoflow/params.hpp"

namespace histoflow {

struct ExperimentInfo {
  std::string name;
  std::string description;
  std::filesystem::path output_dir;  // absolute
  std::uint64_t seed = 0;
  std::filesystem::path graph_file;  // absolute; empty in the harness
};

// Where a stage doing long work (training folds at end of stream, an evaluation) says how far it is. The
// runtime shows it on the progress line with an ETA; the stage harness ignores it. Thread-safe.
class StageProgress {
 public:
  virtual ~StageProgress() = default;
  // `what`: where the stage is, e.g. "fold 2/5, epoch 3/20"; `fraction`: of the stage's whole long task, in
  // [0, 1], or < 0 when unknown. Cheap enough to call once per epoch or batch.
  virtual void report(const std::string& what, double fraction) = 0;
};

// Lets a stage end the run's input early: a trainer whose iteration or time budget is spent. Sources are asked
// for no further items; items already generated go on through the graph, and every stage is then flushed as at a
// natural end, so the run completes. Thread-safe.
class StreamControl {
 public:
  virtual ~StreamControl() = default;
  // `reason` says who and why ("stage 'finetune' ended training: ..."); the first call's reason is kept and
  // reported with the run's result.
  virtual void end_sources(const std::string& reason) = 0;
  virtual bool sources_ended() const = 0;
  // True once the run is cancelled (flowrun: SIGINT or SIGTERM, as Slurm ends a job). Sources stop at once; work
  // inside a stage (training at end of stream, an evaluation) stops at its next step through throw_if_cancelled.
  virtual bool cancelled() const = 0;
};

// Thrown by throw_if_cancelled. The runtime records the run as cancelled, not failed; a stage that catches
// exceptions around its steps lets this one through.
class RunCancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Which part of the source items a run takes (`flowrun run --shard I/N`, a Slurm array task): shard `index` of
// `count`. A shardable source (StageContract::shardable) emits only its items; count 1 is the whole input.
struct RunShard {
  std::int64_t index = 0;
  std::int64_t count = 1;
  bool split() const { return count > 1; }
  std::string name() const { return std::to_string(index) + "-of-" + std::to_string(count); }  // "2-of-8"
};

struct StageContext {
  std::string stage_id;
  const StageContract* contract = nullptr;
  Params params;
  ExperimentInfo experiment;
  ErrorLog* errors = nullptr;        // never null while a graph runs
  StageProgress* progress = nullptr; // never null while a graph runs or in the stage harness
  StreamControl* stream = nullptr;    // never null while a graph runs or in the stage harness
  RunShard shard;                     // read by shardable sources
};

// Call at each step of long work (a bag, a batch, an iteration): throws RunCancelled once the run is cancelled, so
// that a cancelled run stops within a step rather than after the whole task. Cheap: one atomic load.
inline void throw_if_cancelled(const StageContext& context) {
  if (context.stream && context.stream->cancelled()) throw RunCancelled("stage '" + context.stage_id + "': the run was cancelled");
}

// A file or folder a stage wrote for the user to open (a summary, a comparison table, a feature folder).
struct StageResult {
  std::string what;            // "summary", "comparison table", "feature files"
  std::filesystem::path path;  // absolute
};

// Where a stage puts its results. `port` indexes the contract's outputs.
// Packets emitted while processing an input inherit that input's flow-control tickets, so the
// in-flight bound holds across stages without the stage knowing about it.
class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual void emit(PacketPtr packet, std::size_t port = 0) = 0;
  void emit(Packet packet, std::size_t port = 0) { emit(make_packet(std::move(packet)), port); }
};

class Stage {
 public:
  virtual ~Stage() = default;
  // Acquire resources (load a model, open files). Throwing here fails the run before any item is read.
  virtual void open() {}
  // Transforms and sinks: one input packet. Throwing records an error for this item; the run continues.
  virtual void process(const PacketPtr& /*input*/, std::size_t /*input_port*/, Emitter& /*out*/) {}
  // Sources: produce the next item (emit one or more packets for it). Return true when more may follow,
  // false when this call was the last (what it emitted is kept; an exhausted source emits nothing and
  // returns false).
  virtual bool generate(Emitter& /*out*/) { return false; }
  // Sources: how many items generate() will produce, when known (drives the progress bar).
  virtual std::int64_t size_hint() const { return -1; }
  // End of stream: every upstream stage has finished. Emit what was held back.
  virtual void flush(Emitter& /*out*/) {}
  // Release resources. Called after a successful open(), on success and on cancellation or failure (then
  // flush was not called).
  virtual void close() {}

  // What, besides the stage type and its output-affecting parameters, determines its output: e.g. the
  // SHA-256 of a model's weights. Asked after open().
  virtual std::string identity() const { return {}; }
  // The stage's lineage, after open(): a SHA-256 over its type, output-affecting parameters, identity()
  // and the lineages of its inputs. Equal lineages and equal source items give equal outputs, so
  // resumable stages and caches key their results by it.
  virtual void set_lineage(const std::string& /*lineage*/) {}
  // Resumable stages (contract.resumable): called for every source item that reaches this stage, before
  // the item enters the graph, possibly concurrently with process(). When the stage's result for the item
  // exists, emit what downstream needs (e.g. the stored file) and return true: the run then skips the
  // item in every upstream stage that works only for such finished results.
  virtual bool restore(const Packet& /*source_item*/, Emitter& /*out*/) { return false; }

  // Shardable sources, after open(): the ids of the items this shard emits, in order. A sharded run records them
  // before any item moves, so that `flowrun status` can name a failed shard's items.
  virtual std::vector<std::string> shard_items() const { return {}; }

  // Sinks (and any stage that writes files for people): the main results of this run, asked after flush().
  // `flowrun run` prints them and run_summary.json lists them; each must exist and be from this run.
  virtual std::vector<StageResult> results() const { return {}; }
};

}  // namespace histoflow
