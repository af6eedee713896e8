// The runtime: a validated GraphSpec becomes a oneTBB flow graph with bounded flow, batching, ordering,
// error records, end-of-stream flushes, cancellation and optional tracing.
#include "histoflow/runtime.hpp"

#include <sys/resource.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <nlohmann/json.hpp>
#include <bit>
#include <condition_variable>
#include <deque>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <mutex>
#include <set>
#include <thread>

#include "emission_check.hpp"
#include "flow_control.hpp"
#include "histoflow/atomic_file.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/registry.hpp"
#include "lineage.hpp"
#include "histoflow/tracer.hpp"
#include "histoflow/version.hpp"
#include "progress.hpp"

namespace histoflow {

int RunResult::exit_code() const {
  switch (status) {
    case RunStatus::Completed: return 0;
    case RunStatus::CompletedWithErrors:
    case RunStatus::Failed: return 1;
    case RunStatus::Cancelled: return 130;
  }
  return 1;
}

namespace {

using detail::Gate;
using detail::GroupTicket;
using detail::ItemTicket;
using detail::Ticket;
using Clock = std::chrono::steady_clock;

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

std::string item_label(const Packet& packet) {
  if (packet.members.empty()) return packet.provenance.item_id;
  std::set<std::string> ids;
  for (const auto& m : packet.members) ids.insert(m->provenance.item_id);
  std::string text;
  std::size_t shown = 0;
  for (const auto& id : ids) {
    if (shown++ == 4) {
      text += ", ...";
      break;
    }
    text += (text.empty() ? "" : ", ") + id;
  }
  return text;
}

class Run;

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

class Run {
 public:
  Run(const GraphSpec& spec, const RunOptions& options)
      : spec_(spec), options_(options), gate_(spec.run.max_in_flight), tile_gate_(spec.run.max_tiles_in_flight) {}
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
  // Asks the resumable stages behind a source port whether this item's results exist (they emit them).
  std::uint64_t restore_item(StageNode& source, std::size_t port, const Envelope& item);

 private:
  void create_stages();
  void plan_resumption();
  void open_stages();
  void close_stages();
  void collect_results(RunResult& result);
  void report_progress(ProgressReporter& progress);
  StageStats stats_of(std::size_t index) const;
  void drive_source(StageNode& node);
  void feed_gated();
  bool quiescent() const { return sources_running_.load() == 0 && pending_total_.load() == 0 && active.load() == 0; }
  void check_stall();
  void monitor();
  void drain();
  void flush_all();
  void write_outputs(const RunResult& result);

  const GraphSpec& spec_;
  const RunOptions& options_;
  // Gates are declared before everything that holds tickets (pending packets, the graph), so tickets
  // still held when a cancelled run is torn down return to a gate that is alive.
  Gate gate_;       // source items
  Gate tile_gate_;  // packets on gated outputs
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

// ---------------------------------------------------------------------------------------------------------

class NodeEmitter final : public Emitter {
 public:
  NodeEmitter(StageNode& node, const Envelope* input) : node_(node), input_(input) {}
  void emit(PacketPtr packet, std::size_t port) override {
    detail::check_emission(node_.contract, packet, port, emitted_, input_ != nullptr);
    ++emitted_;
    if (port < 64) emitted_mask_ |= std::uint64_t{1} << port;
    Envelope out;
    out.packet = std::move(packet);
    if (input_) {
      out.ticket = input_->ticket;
      out.sequence = input_->sequence;
      out.restored = input_->restored;
    }
    node_.send(out, port);
  }
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
  std::vector<std::uint64_t>& next_sequence_;
};

void SourceEmitter::emit(PacketPtr packet, std::size_t port) {
  detail::check_emission(node_.contract, packet, port, count, false);
  Envelope out{std::move(packet), ticket_, next_sequence_[port]++, 0, Control::None};
  out.restored = run_.restore_item(node_, port, out);
  ++count;
  node_.send(out, port);
}

// ---------------------------------------------------------------------------------------------------------

StageNode::StageNode(Run& run, std::size_t index_, const StageSpec& spec_, std::unique_ptr<Stage> stage_)
    : spec(spec_), contract(*spec_.contract), index(index_), stage(std::move(stage_)), successors(contract.outputs.size()),
      run_(run) {
  if (contract.batched) batch_size_ = static_cast<std::size_t>(std::get<std::int64_t>(spec.params.at("batch")));
}

void StageNode::build(tbb::flow::graph& graph) {
  if (contract.is_source()) return;
  const std::size_t concurrency = contract.concurrency == Concurrency::Serial      ? static_cast<std::size_t>(tbb::flow::serial)
                                  : contract.concurrency == Concurrency::Unlimited ? static_cast<std::size_t>(tbb::flow::unlimited)
                                                                                   : static_cast<std::size_t>(std::max(1, contract.max_concurrency));
  node_ = std::make_unique<tbb::flow::function_node<Envelope, tbb::flow::continue_msg>>(
      graph, concurrency, [this](const Envelope& e) {
        process(e);
        return tbb::flow::continue_msg();
      });
  if (contract.batched)
    batcher_ = std::make_unique<tbb::flow::function_node<Envelope, tbb::flow::continue_msg>>(
        graph, tbb::flow::serial, [this](const Envelope& e) {
          batch(e);
          return tbb::flow::continue_msg();
        });
  sequencers_.resize(contract.inputs.size());
  for (std::size_t port = 0; port < contract.inputs.size(); ++port) {
    if (!contract.inputs[port].ordered) continue;
    sequencers_[port] = std::make_unique<tbb::flow::sequencer_node<Envelope>>(
        graph, [](const Envelope& e) { return static_cast<std::size_t>(e.sequence); });
    if (batcher_) tbb::flow::make_edge(*sequencers_[port], *batcher_);
    else tbb::flow::make_edge(*sequencers_[port], *node_);
  }
}

void StageNode::put(Envelope envelope) {
  if (downstream_resumable != 0 && !feeds_other_work && (downstream_resumable & ~envelope.restored) == 0) {
    skipped.fetch_add(1);  // every result this input would lead to exists already
    return;
  }
  run_.active.fetch_add(1);
  queued.fetch_add(1);
  if (run_.tracer) run_.tracer->counter(index, queued.load());
  const std::size_t port = envelope.port;
  if (port < sequencers_.size() && sequencers_[port]) sequencers_[port]->try_put(std::move(envelope));
  else if (batcher_) batcher_->try_put(std::move(envelope));
  else node_->try_put(std::move(envelope));
}

bool StageNode::has_gated_output() const {
  return std::any_of(contract.outputs.begin(), contract.outputs.end(), [](const PortSpec& p) { return p.gated; });
}

void StageNode::send(const Envelope& envelope, std::size_t port) {
  if (contract.outputs[port].gated && !envelope.admitted && envelope.control == Control::None) {
    run_.enqueue_gated(*this, port, envelope);
    return;
  }
  for (const auto& [target, target_port] : successors[port]) {
    Envelope copy = envelope;
    copy.port = target_port;
    target->put(std::move(copy));
  }
}

void StageNode::request_batch_flush() {
  if (!batcher_) return;
  run_.active.fetch_add(1);
  batcher_->try_put(Envelope{nullptr, nullptr, 0, 0, Control::FlushBatch});
}

void StageNode::batch(const Envelope& envelope) {
  if (envelope.control == Control::None) {
    pending_.push_back(envelope);
    pending_count_.store(pending_.size());
  }
  const bool full = pending_.size() >= batch_size_;
  if (!pending_.empty() && (full || envelope.control == Control::FlushBatch) && !run_.stop.load()) {
    std::vector<PacketPtr> members;
    std::vector<std::shared_ptr<Ticket>> tickets;
    members.reserve(pending_.size());
    std::uint64_t restored_for_all = ~std::uint64_t{0};
    for (auto& e : pending_) {
      members.push_back(std::move(e.packet));
      if (e.ticket) tickets.push_back(std::move(e.ticket));
      restored_for_all &= e.restored;
    }
    Envelope out{make_batch(members), std::make_shared<GroupTicket>(std::move(tickets)), pending_.front().sequence, 0,
                 Control::None};
    out.restored = restored_for_all;
    pending_.clear();
    pending_count_.store(0);
    run_.active.fetch_add(1);
    node_->try_put(std::move(out));
  }
  // Packets stay queued while they wait in a partial batch; a tombstone (counted when it arrived) and a
  // flush request (never counted) leave here.
  if (envelope.control == Control::Tombstone) {
    queued.fetch_sub(1);
    if (run_.tracer) run_.tracer->counter(index, queued.load());
  }
  run_.active.fetch_sub(1);
}

void StageNode::process(const Envelope& envelope) {
  // A call starts: its packets (one, or a batch's members) leave the queue.
  queued.fetch_sub(contract.batched && envelope.packet ? static_cast<std::int64_t>(std::max<std::size_t>(1, envelope.packet->members.size())) : 1);
  if (run_.tracer) run_.tracer->counter(index, queued.load());
  struct Done {
    Run& run;
    ~Done() { run.active.fetch_sub(1); }
  } done{run_};
  if (run_.stop.load()) return;
  if (envelope.control == Control::Tombstone) {
    if (forward_tombstones)
      for (std::size_t port = 0; port < successors.size(); ++port) send(envelope, port);
    return;
  }
  NodeEmitter emitter(*this, &envelope);
  const auto begin = Clock::now();
  try {
    stage->process(envelope.packet, envelope.port, emitter);
  } catch (const FatalError& e) {
    run_.fail("stage '" + spec.id + "' (item '" + item_label(*envelope.packet) + "'): " + e.what());
  } catch (const std::exception& e) {
    errors.fetch_add(1);
    run_.record_error(*this, envelope.packet.get(), envelope.sequence, e.what());
  }
  const auto end = Clock::now();
  calls.fetch_add(1);
  busy_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
  if (run_.tracer)
    run_.tracer->span(index, begin, end, item_label(*envelope.packet),
                      static_cast<std::int64_t>(std::max<std::size_t>(1, envelope.packet->members.size())));
  if (forward_tombstones) {
    // Ordered consumers downstream need every sequence number: send a placeholder where nothing went.
    Envelope tombstone{nullptr, envelope.ticket, envelope.sequence, 0, Control::Tombstone};
    for (std::size_t port = 0; port < successors.size(); ++port)
      if (!emitter.emitted_on(port)) send(tombstone, port);
  }
}

// ---------------------------------------------------------------------------------------------------------

void Run::record_error(const StageNode& node, const Packet* packet, std::uint64_t sequence, const std::string& message) {
  ErrorRecord record{node.spec.id, packet ? item_label(*packet) : std::string(), sequence, message};
  // One write per line, so that records from parallel stages never interleave.
  const std::string line = "error: stage '" + record.stage + "'" + (record.item.empty() ? "" : " item '" + record.item + "'") +
                           ": " + record.message + "\n";
  std::cerr.write(line.data(), static_cast<std::streamsize>(line.size()));
  errors.add(std::move(record));
}

void Run::fail(const std::string& message) {
  {
    std::lock_guard lock(fail_mutex_);
    if (fatal_message_.empty()) fatal_message_ = message;
  }
  failed_.store(true);
  stop.store(true);
  if (graph_) graph_->cancel();
}

// What a stage threw while it was created, opened or closed, as one line naming the stage.
std::string stage_failure(const StageSpec& spec, const char* while_doing, std::exception_ptr error) {
  std::string what;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception that is not a std::exception";
  }
  return "stage '" + spec.id + "' (" + spec.type + "): " + while_doing + ": " + what;
}

void Run::create_stages() {
  // Stage ids double as TBB-independent indices; successors are wired from the validated edges.
  for (std::size_t i = 0; i < spec_.stages.size(); ++i) {
    const StageSpec& s = spec_.stages[i];
    StageContext context{s.id, s.contract, Params(s.params), spec_.experiment, &errors, progress_[i].get()};
    std::unique_ptr<Stage> stage;
    const auto begin = Clock::now();
    try {
      if (options_.before_stage_phase) options_.before_stage_phase(s, "create");
      stage = Registry::instance().create(s.type, context);
    } catch (...) {
      throw FatalError(stage_failure(s, "cannot be created", std::current_exception()));
    }
    const auto end = Clock::now();
    if (tracer) tracer->phase_span(i, begin, end, Tracer::Phase::Create);
    nodes_.push_back(std::make_unique<StageNode>(*this, i, s, std::move(stage)));
    nodes_.back()->open_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count();
  }
  for (const auto& e : spec_.edges) nodes_[e.from]->successors[e.from_port].emplace_back(nodes_[e.to].get(), e.to_port);
  const bool any_ordered = std::any_of(spec_.stages.begin(), spec_.stages.end(), [](const StageSpec& s) {
    return std::any_of(s.contract->inputs.begin(), s.contract->inputs.end(), [](const PortSpec& p) { return p.ordered; });
  });
  for (auto& node : nodes_)
    node->forward_tombstones = any_ordered && node->contract.cardinality == Cardinality::OneToOne && !node->contract.batched;
}

// For every stage, the first resumable stages downstream and whether other work depends on it: a stage
// may skip an input when all of those stages restored the input's item and nothing else needs it.
void Run::plan_resumption() {
  for (auto& node : nodes_) {
    node->port_resumable.assign(node->successors.size(), 0);
    if (!node->contract.resumable) continue;
    if (resumable_.size() == 64) throw FatalError("a graph can have at most 64 resumable stages");
    node->resumable_bit = std::uint64_t{1} << resumable_.size();
    resumable_.push_back(node.get());
  }
  for (auto it = spec_.topo_order.rbegin(); it != spec_.topo_order.rend(); ++it) {
    StageNode& node = *nodes_[*it];
    bool has_successor = false;
    for (std::size_t port = 0; port < node.successors.size(); ++port)
      for (const auto& [target, target_port] : node.successors[port]) {
        has_successor = true;
        node.port_resumable[port] |= target->downstream_resumable;
        node.feeds_other_work = node.feeds_other_work || target->feeds_other_work;
      }
    if (node.resumable_bit) {
      node.downstream_resumable = node.resumable_bit;
      node.feeds_other_work = false;
    } else {
      for (const auto mask : node.port_resumable) node.downstream_resumable |= mask;
      if (!has_successor) node.feeds_other_work = true;  // a sink: its work is the point
    }
  }
}

std::uint64_t Run::restore_item(StageNode& source, std::size_t port, const Envelope& item) {
  std::uint64_t restored = 0;
  for (std::uint64_t mask = source.port_resumable[port]; mask != 0; mask &= mask - 1) {
    StageNode& stage = *resumable_[static_cast<std::size_t>(std::countr_zero(mask))];
    Envelope input = item;
    NodeEmitter emitter(stage, &input);
    try {
      if (stage.stage->restore(*item.packet, emitter)) {
        restored |= stage.resumable_bit;
        stage.restored.fetch_add(1);
      }
    } catch (const std::exception& e) {  // the item is then computed again
      record_error(stage, item.packet.get(), item.sequence, std::string("cannot restore, recomputing: ") + e.what());
    }
  }
  return restored;
}

// In topological order, so that each stage's lineage can include its inputs' (and a model's identity,
// known once it is open).
void Run::open_stages() {
  for (const std::size_t index : spec_.topo_order) {
    StageNode& node = *nodes_[index];
    const auto begin = Clock::now();
    try {
      if (options_.before_stage_phase) options_.before_stage_phase(node.spec, "open");
      node.stage->open();
      node.opened = true;
      std::vector<std::string> inputs;
      for (const auto& edge : spec_.edges)
        if (edge.to == index)
          inputs.push_back(std::to_string(edge.to_port) + " " + nodes_[edge.from]->lineage + ":" + std::to_string(edge.from_port));
      node.lineage = detail::stage_lineage(node.spec.type, node.contract, node.spec.params, node.stage->identity(), inputs);
      node.stage->set_lineage(node.lineage);
    } catch (...) {
      throw FatalError(stage_failure(node.spec, "cannot be opened", std::current_exception()));
    }
    const auto end = Clock::now();
    node.open_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count();
    if (tracer) tracer->phase_span(index, begin, end, Tracer::Phase::Open);
  }
}

// Every stage whose open() succeeded is closed, whatever happened since; a failure to close is recorded.
void Run::close_stages() {
  for (auto& node : nodes_) {
    if (!node->opened) continue;
    const auto begin = Clock::now();
    try {
      node->stage->close();
    } catch (...) {
      record_error(*node, nullptr, 0, stage_failure(node->spec, "while closing", std::current_exception()));
    }
    if (tracer) tracer->phase_span(node->index, begin, Clock::now(), Tracer::Phase::Close);
  }
}

// The main result files the stages name; one that does not exist is an error of that stage, not a result.
void Run::collect_results(RunResult& result) {
  for (const std::size_t index : spec_.topo_order) {
    StageNode& node = *nodes_[index];
    try {
      for (auto& r : node.stage->results()) {
        std::error_code ec;
        if (!std::filesystem::exists(r.path, ec)) {
          record_error(node, nullptr, 0, "names its " + r.what + " '" + r.path.string() + "', which was not written");
          continue;
        }
        result.results.push_back({node.spec.id, std::move(r.what), std::move(r.path)});
      }
    } catch (...) {
      record_error(node, nullptr, 0, stage_failure(node.spec, "listing its results", std::current_exception()));
    }
  }
}

StageStats Run::stats_of(std::size_t index) const {
  if (index >= nodes_.size()) return {spec_.stages[index].id};  // never created: the run failed before it
  const StageNode& node = *nodes_[index];
  return {node.spec.id, node.calls.load(), node.errors.load(), node.busy_ns.load() / 1e9,
          node.restored.load(), node.skipped.load(), static_cast<double>(node.open_ns) / 1e9};
}

// Redraws the progress line until told to stop: source items, tiles, and the long work a stage reports.
void Run::report_progress(ProgressReporter& progress) {
  const auto state = [&] {
    ProgressState s;
    s.items_done = gate_.retired();
    s.items_started = generated_.load();
    s.tiles_done = tile_gate_.retired();
    s.tiles_seen = tile_gate_.retired() + static_cast<std::uint64_t>(tile_gate_.in_flight()) +
                   static_cast<std::uint64_t>(pending_total_.load());
    s.end_of_stream = end_of_stream_.load();
    if (const NodeProgress* p = latest_progress_.load()) p->fill(s);
    return s;
  };
  while (!progress_exit_.load()) {
    progress.update(state());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  progress.update(state());
}

void Run::drive_source(StageNode& node) {
  std::vector<std::uint64_t> next_sequence(node.contract.outputs.size(), 0);
  int consecutive_failures = 0;
  while (!stop.load()) {
    if (!gate_.acquire(stop)) break;
    auto ticket = std::make_shared<ItemTicket>(gate_);
    SourceEmitter emitter(*this, node, ticket, next_sequence);
    ticket.reset();  // the emitted envelopes now own it; an item that emitted nothing retires at once
    bool more = true;
    const auto begin = Clock::now();
    try {
      more = node.stage->generate(emitter);
      consecutive_failures = 0;
    } catch (const FatalError& e) {
      fail("source stage '" + node.spec.id + "': " + e.what());
      break;
    } catch (const std::exception& e) {
      node.errors.fetch_add(1);
      record_error(node, nullptr, next_sequence.empty() ? 0 : next_sequence[0], e.what());
      if (++consecutive_failures >= 1000) {
        fail("source stage '" + node.spec.id + "' failed 1000 times in a row; last error: " + e.what());
        break;
      }
    }
    const auto end = Clock::now();
    node.calls.fetch_add(1);
    node.busy_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
    if (tracer) tracer->span(node.index, begin, end, "", static_cast<std::int64_t>(emitter.count));
    if (emitter.count > 0) generated_.fetch_add(1);
    if (!more) break;
  }
  sources_running_.fetch_sub(1);
}

void Run::enqueue_gated(StageNode& node, std::size_t port, Envelope envelope) {
  pending_total_.fetch_add(1);
  const std::int64_t waiting = node.gate_waiting.fetch_add(1) + 1;
  if (tracer) tracer->backlog(node.index, waiting);
  {
    std::lock_guard lock(pending_mutex_);
    pending_.push_back({&node, port, std::move(envelope)});
  }
  pending_cv_.notify_one();
}

// Admits gated packets in emission order, each under a slot of the tile gate and with its own ticket
// beside the one of the item it came from.
void Run::feed_gated() {
  for (;;) {
    PendingPacket next;
    {
      std::unique_lock lock(pending_mutex_);
      pending_cv_.wait_for(lock, std::chrono::milliseconds(5),
                           [&] { return !pending_.empty() || feeder_exit_.load() || stop.load(); });
      if (stop.load() || (feeder_exit_.load() && pending_.empty())) return;
      if (pending_.empty()) continue;
      next = std::move(pending_.front());
      pending_.pop_front();
    }
    if (!tile_gate_.acquire(stop)) {
      pending_total_.fetch_sub(1);
      return;
    }
    std::shared_ptr<Ticket> own = std::make_shared<ItemTicket>(tile_gate_);
    next.envelope.ticket = next.envelope.ticket
                               ? std::make_shared<GroupTicket>(std::vector<std::shared_ptr<Ticket>>{next.envelope.ticket, own})
                               : own;
    next.envelope.admitted = true;
    const std::int64_t waiting = next.node->gate_waiting.fetch_sub(1) - 1;
    if (tracer) tracer->backlog(next.node->index, waiting);
    next.node->send(next.envelope, next.port);
    pending_total_.fetch_sub(1);  // after send: `active` already counts what it started
  }
}

// A stall: a source or the tile feeder waits for a slot and nothing moves, so the slots are held by
// partial batches. It must persist over two checks without anything retiring, so that a slot just being
// handed over is no stall.
void Run::check_stall() {
  const std::uint64_t retired = gate_.retired() + tile_gate_.retired();
  const bool stalled = !stop.load() && gate_.waiting() + tile_gate_.waiting() > 0 && active.load() == 0 &&
                       retired == retired_at_last_check_;
  stalled_checks_ = stalled ? stalled_checks_ + 1 : 0;
  retired_at_last_check_ = retired;
  if (stalled_checks_ >= 2) {
    for (auto& node : nodes_)
      if (node->has_pending_batch()) node->request_batch_flush();
    stalled_checks_ = 0;
  }
}

void Run::monitor() {
  while (!quiescent()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (options_.cancel && options_.cancel->load() && !stop.load()) {
      stop.store(true);
      graph_->cancel();
    }
    if (stop.load() && sources_running_.load() == 0) return;
    check_stall();
  }
}

// Waits until nothing is queued, admitted or running (used between end-of-stream flushes).
void Run::drain() {
  for (;;) {
    graph_->wait_for_all();
    if (stop.load() || (pending_total_.load() == 0 && active.load() == 0)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    check_stall();
  }
}

void Run::flush_all() {
  for (std::size_t index : spec_.topo_order) {
    if (stop.load()) return;
    StageNode& node = *nodes_[index];
    if (node.has_pending_batch()) {
      node.request_batch_flush();
      drain();
    }
    NodeEmitter emitter(node, nullptr);
    const auto begin = Clock::now();
    try {
      node.stage->flush(emitter);
    } catch (const FatalError& e) {
      fail("stage '" + node.spec.id + "' at end of stream: " + e.what());
    } catch (const std::exception& e) {
      node.errors.fetch_add(1);
      record_error(node, nullptr, 0, std::string("at end of stream: ") + e.what());
    }
    const auto end = Clock::now();
    // Stages that do their work at end of stream (training, evaluation) show it in the summary too.
    node.busy_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(end - begin).count());
    if (tracer) tracer->phase_span(node.index, begin, end, Tracer::Phase::Flush);
    drain();
  }
}

void Run::write_outputs(const RunResult& result) {
  nlohmann::json summary;
  summary["histoflow_version"] = kVersion;
  summary["experiment"] = spec_.experiment.name;
  summary["graph"] = spec_.file.string();
  summary["status"] = result.status == RunStatus::Completed             ? "completed"
                      : result.status == RunStatus::CompletedWithErrors ? "completed_with_errors"
                      : result.status == RunStatus::Failed              ? "failed"
                                                                        : "cancelled";
  if (!result.fatal_message.empty()) summary["fatal"] = result.fatal_message;
  summary["wall_seconds"] = result.wall_seconds;
  summary["peak_rss_mb"] = result.peak_rss_mb;
  summary["items_generated"] = result.items_generated;
  summary["items_retired"] = result.items_retired;
  summary["peak_in_flight"] = result.peak_in_flight;
  summary["peak_tiles_in_flight"] = result.peak_tiles_in_flight;
  summary["max_tiles_in_flight"] = spec_.run.max_tiles_in_flight;
  summary["max_in_flight"] = spec_.run.max_in_flight;
  auto& errors_json = summary["errors"] = nlohmann::json::array();
  for (const auto& e : result.errors)
    errors_json.push_back({{"stage", e.stage}, {"item", e.item}, {"sequence", e.sequence}, {"message", e.message}});
  auto& stages_json = summary["stages"] = nlohmann::json::array();
  for (const auto& s : result.stages)
    stages_json.push_back({{"id", s.id}, {"calls", s.calls}, {"errors", s.errors}, {"busy_seconds", s.busy_seconds},
                           {"open_seconds", s.open_seconds}, {"restored", s.restored}, {"skipped", s.skipped}});
  auto& results_json = summary["results"] = nlohmann::json::array();
  for (const auto& r : result.results)
    results_json.push_back({{"stage", r.stage}, {"what", r.what}, {"path", r.path.string()}});
  write_file_atomically(spec_.experiment.output_dir / "run_summary.json", summary.dump(2) + "\n");
}

RunResult Run::execute() {
  RunResult result;
  const auto start = Clock::now();
  const std::int64_t threads = options_.threads.value_or(spec_.run.threads) > 0
                                   ? options_.threads.value_or(spec_.run.threads)
                                   : static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  // Workers fill the arena; one extra slot lets the main thread help while it waits for the graph.
  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads) + 1);
  tbb::task_arena arena(static_cast<int>(threads) + 1, 1);

  if (!options_.trace_file.empty()) {
    std::vector<Tracer::StageInfo> infos;
    for (const auto& s : spec_.stages) {
      const auto& c = *s.contract;
      infos.push_back({s.id, s.type,
                       c.concurrency == Concurrency::Serial      ? 1
                       : c.concurrency == Concurrency::Unlimited ? 0
                                                                 : c.max_concurrency,
                       0});
    }
    for (std::size_t rank = 0; rank < spec_.topo_order.size(); ++rank)
      infos[spec_.topo_order[rank]].rank = static_cast<int>(rank);
    tracer_ = std::make_unique<Tracer>(std::move(infos));
    tracer = tracer_.get();
  }

  for (const auto& s : spec_.stages) progress_.push_back(std::make_unique<NodeProgress>(s.id, latest_progress_));
  try {
    // Written first, so that it is fresh on every run (also one that fails) and stages may refer to it.
    if (options_.write_outputs)
      write_file_atomically(spec_.experiment.output_dir / "resolved_graph.toml", resolved_graph_toml(spec_));
    create_stages();
    plan_resumption();
    open_stages();
  } catch (const std::exception& e) {  // a FatalError naming the stage, or the resolved graph unwritable
    fail(e.what());
  }

  std::int64_t total = 0;
  for (auto& node : nodes_) {
    if (!node->contract.is_source() || failed_.load()) continue;
    std::int64_t hint = -1;
    try {
      hint = node->stage->size_hint();
    } catch (...) {  // only the progress total is lost
    }
    total = (hint < 0 || total < 0) ? -1 : total + hint;
  }
  ProgressReporter progress(options_.progress, options_.progress_interval, total);

  if (!failed_.load()) {
    std::thread progress_thread([&] { report_progress(progress); });
    arena.execute([&] { graph_ = std::make_unique<tbb::flow::graph>(); });
    arena.execute([&] {
      for (auto& node : nodes_) node->build(*graph_);
    });
    std::vector<std::thread> threads;
    for (auto& node : nodes_)
      if (node->contract.is_source()) {
        sources_running_.fetch_add(1);
        threads.emplace_back([this, n = node.get()] { drive_source(*n); });  // try_put submits into the graph's arena
      }
    if (std::any_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n->has_gated_output(); }))
      threads.emplace_back([this] { feed_gated(); });
    monitor();
    arena.execute([&] { drain(); });
    if (options_.cancel && options_.cancel->load()) stop.store(true);
    end_of_stream_.store(true);
    if (!stop.load()) arena.execute([&] { flush_all(); });
    if (!stop.load()) collect_results(result);
    feeder_exit_.store(true);
    pending_cv_.notify_all();
    for (auto& t : threads) t.join();
    arena.execute([&] { graph_->wait_for_all(); });
    progress_exit_.store(true);
    progress_thread.join();
  }
  progress.finish();

  close_stages();
  if (tracer_) tracer_->finish();

  result.errors = errors.snapshot();
  result.items_generated = generated_.load();
  result.peak_in_flight = gate_.peak();
  result.peak_tiles_in_flight = tile_gate_.peak();
  for (std::size_t index : spec_.topo_order) result.stages.push_back(stats_of(index));

  // Queued envelopes of a cancelled run go with the graph; their tickets return to the gate.
  arena.execute([&] {
    pending_.clear();
    nodes_.clear();
    graph_.reset();
  });
  result.items_retired = gate_.retired();
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) == 0) result.peak_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
  if (failed_.load()) {
    result.status = RunStatus::Failed;
    result.fatal_message = fatal_message_;
  } else if (stop.load()) {
    result.status = RunStatus::Cancelled;
  } else {
    result.status = result.errors.empty() ? RunStatus::Completed : RunStatus::CompletedWithErrors;
  }

  if (tracer_) {
    try {
      tracer_->write(options_.trace_file);
    } catch (const std::exception& e) {
      std::cerr << "warning: " << e.what() << '\n';
    }
  }
  if (options_.write_outputs) {
    try {
      write_outputs(result);
    } catch (const std::exception& e) {
      if (result.status == RunStatus::Completed) result.status = RunStatus::Failed;
      if (result.fatal_message.empty()) result.fatal_message = std::string("writing the run summary: ") + e.what();
    }
  }
  return result;
}

}  // namespace

RunResult run_graph(const GraphSpec& spec, const RunOptions& options) {
  Run run(spec, options);
  return run.execute();
}

std::string format_run_summary(const RunResult& result) {
  std::ostringstream out;
  const char* status = result.status == RunStatus::Completed             ? "completed"
                       : result.status == RunStatus::CompletedWithErrors ? "completed with errors"
                       : result.status == RunStatus::Failed              ? "FAILED"
                                                                         : "cancelled";
  out << "run " << status << ": " << result.items_generated << " items in " << std::fixed << std::setprecision(2)
      << result.wall_seconds << " s (peak " << result.peak_in_flight << " in flight)\n";
  if (!result.fatal_message.empty()) out << "fatal: " << result.fatal_message << '\n';
  out << "  " << std::left << std::setw(24) << "stage" << std::right << std::setw(10) << "calls" << std::setw(10)
      << "errors" << std::setw(12) << "busy s" << '\n';
  for (const auto& s : result.stages)
    out << "  " << std::left << std::setw(24) << s.id << std::right << std::setw(10) << s.calls << std::setw(10)
        << s.errors << std::setw(12) << std::setprecision(3) << s.busy_seconds << '\n';
  for (const auto& r : result.results) out << "result: " << r.stage << ": " << r.what << ": " << r.path.string() << '\n';
  for (const auto& s : result.stages)
    if (s.restored > 0 || s.skipped > 0)
      out << "  resumed: stage '" << s.id << "' " << (s.restored ? "restored " + std::to_string(s.restored) + " finished item(s)" : "")
          << (s.restored && s.skipped ? ", " : "") << (s.skipped ? "skipped " + std::to_string(s.skipped) + " input(s)" : "")
          << '\n';
  if (!result.errors.empty()) {
    out << result.errors.size() << " error record(s):\n";
    for (const auto& e : result.errors)
      out << "  stage '" << e.stage << "'" << (e.item.empty() ? "" : " item '" + e.item + "'") << ": " << e.message << '\n';
  }
  return out.str();
}

}  // namespace histoflow
