#pragma once
// One stage as oneTBB flow-graph nodes, and what travels between them: queueing, ordering (sequencers),
// batching, tombstones for ordered consumers, and the emitters through which stages hand packets on.
// Private to the runtime; the orchestration of a run is in run.hpp.
#include <tbb/flow_graph.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow_control.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/stage.hpp"

namespace histoflow::detail {

using Clock = std::chrono::steady_clock;

class Run;

enum class Control : std::uint8_t { None, Tombstone, FlushBatch };

// What travels on the TBB edges: the packet plus the runtime's bookkeeping, invisible to stages.
struct Envelope {
  PacketPtr packet;
  std::shared_ptr<Ticket> ticket;
  std::uint64_t sequence = 0;  // per source and port: ordering key
  std::size_t port = 0;        // input port at the receiving stage
  Control control = Control::None;
  bool admitted = false;       // passed the tile gate (for packets on gated outputs)
  std::uint64_t restored = 0;  // resumable stages (bits) whose result for this item exists already
};

// The item id of a packet, or of a batch's members (the first few), for error records and traces.
std::string item_label(const Packet& packet);

class StageNode {
 public:
  StageNode(Run& run, std::size_t index, const StageSpec& spec, std::unique_ptr<Stage> stage);
  void build(tbb::flow::graph& graph);
  void put(Envelope envelope);  // entry point for upstream stages and sources

  const StageSpec& spec;
  const StageContract& contract;
  std::size_t index;
  std::unique_ptr<Stage> stage;
  std::vector<std::vector<std::pair<StageNode*, std::size_t>>> successors;  // per output port: (node, input port)
  bool forward_tombstones = false;
  std::atomic<std::int64_t> queued{0};
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::int64_t> busy_ns{0};
  std::int64_t open_ns = 0;  // construction and open()
  std::atomic<std::int64_t> gate_waiting{0};  // packets emitted on gated outputs, waiting for the tile budget
  bool opened = false;  // close() is owed only to stages whose open() succeeded
  // Resumption (see Stage::restore): this stage's bit when it is resumable; the first resumable stages
  // downstream of it; whether some path leads to a stage that is not behind one of those.
  std::uint64_t resumable_bit = 0;
  std::uint64_t downstream_resumable = 0;
  bool feeds_other_work = false;
  std::vector<std::uint64_t> port_resumable;  // per output port: first resumable stages downstream
  std::atomic<std::uint64_t> skipped{0};      // inputs not processed: only finished results were behind them
  std::atomic<std::uint64_t> restored{0};     // items whose result this (resumable) stage restored
  std::atomic<std::uint64_t> left_to_others{0};  // sources: items another process held locked (Run::lock_item)
  std::string lineage;

  void send(const Envelope& envelope, std::size_t port);  // to every successor of `port`
  bool has_pending_batch() const { return pending_count_.load() > 0; }
  bool has_gated_output() const;
  void request_batch_flush();

 private:
  void process(const Envelope& envelope);
  void batch(const Envelope& envelope);

  Run& run_;
  std::unique_ptr<tbb::flow::function_node<Envelope, tbb::flow::continue_msg>> node_;
  std::unique_ptr<tbb::flow::function_node<Envelope, tbb::flow::continue_msg>> batcher_;
  std::vector<std::unique_ptr<tbb::flow::sequencer_node<Envelope>>> sequencers_;  // per input port, when ordered
  std::vector<Envelope> pending_;
  std::atomic<std::size_t> pending_count_{0};
  std::size_t batch_size_ = 0;
};

// What a stage emits while processing an input (or flushing, with no input) goes on with the input's
// ticket and sequence number.
class NodeEmitter final : public Emitter {
 public:
  NodeEmitter(StageNode& node, const Envelope* input) : node_(node), input_(input) {}
  void emit(PacketPtr packet, std::size_t port) override;
  bool emitted_on(std::size_t port) const { return port < 64 && (emitted_mask_ >> port & 1U); }

 private:
  StageNode& node_;
  const Envelope* input_;
  // Plain counters, not a vector: the per-call path allocates nothing of its own.
  std::size_t emitted_ = 0;
  std::uint64_t emitted_mask_ = 0;
};

// Source items: every packet of one generate() call shares the item's ticket; sequence numbers count
// packets per output port so that ordered consumers see 0, 1, 2, ...
class SourceEmitter final : public Emitter {
 public:
  SourceEmitter(Run& run, StageNode& node, std::shared_ptr<Ticket> ticket, std::vector<std::uint64_t>& next_sequence)
      : run_(run), node_(node), ticket_(std::move(ticket)), next_sequence_(next_sequence) {}
  void emit(PacketPtr packet, std::size_t port) override;
  std::size_t count = 0;

 private:
  Run& run_;
  StageNode& node_;
  std::shared_ptr<Ticket> ticket_;
  std::optional<std::string> locked_item_;  // the item whose lock ticket_ holds (a source may emit several packets per item)
  std::vector<std::uint64_t>& next_sequence_;
};

}  // namespace histoflow::detail
