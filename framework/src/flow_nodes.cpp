// One stage as oneTBB flow-graph nodes: how packets enter it (sequencers for ordered inputs, the batcher for
// batched stages), how it calls the stage, and how what the stage emits is routed to its successors.
#include "flow_nodes.hpp"

#include <algorithm>
#include <set>

#include "emission_check.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/tracer.hpp"
#include "run.hpp"

namespace histoflow::detail {

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

void NodeEmitter::emit(PacketPtr packet, std::size_t port) {
  check_emission(node_.contract, packet, port, emitted_, input_ != nullptr);
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

void SourceEmitter::emit(PacketPtr packet, std::size_t port) {
  check_emission(node_.contract, packet, port, count, false);
  const std::string& item = packet->provenance.item_id;
  if (run_.locks_items(node_, port) && locked_item_ != item) {
    auto lock = run_.lock_item(node_, *packet);
    if (!lock) return;  // another process works on it; no sequence number is taken, so ordered ports see no gap
    ticket_ = std::make_shared<LockedTicket>(std::move(ticket_), std::move(*lock));
    locked_item_ = item;
  }
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
  if (envelope.control == Control::None && downstream_resumable != 0 && !feeds_other_work &&
      (downstream_resumable & ~envelope.restored) == 0) {
    skipped.fetch_add(1);  // every result this input would lead to exists already
    // An ordered input, here or downstream, still needs the item's sequence number: a placeholder goes on.
    const bool ordered_here = envelope.port < sequencers_.size() && sequencers_[envelope.port];
    if (!ordered_here && !forward_tombstones) return;
    envelope = Envelope{nullptr, envelope.ticket, envelope.sequence, envelope.port, Control::Tombstone};
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
  } catch (const RunCancelled&) {  // not an error of the item: a rerun does it again
    run_.stop_cancelled();
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

}  // namespace histoflow::detail
