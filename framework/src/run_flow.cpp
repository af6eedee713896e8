// Keeping items moving through a run's flow graph: source threads admitted by the item gate, the feeder
// that admits gated packets under the tile budget, the monitor that notices cancellation and stalls,
// draining, and the end-of-stream flushes in topological order.
#include <chrono>
#include <thread>

#include "run.hpp"

namespace histoflow::detail {

void Run::drive_source(StageNode& node) {
  std::vector<std::uint64_t> next_sequence(node.contract.outputs.size(), 0);
  int consecutive_failures = 0;
  while (!stop.load() && !stream_.sources_ended()) {
    if (!gate_.acquire(stop)) break;
    auto ticket = std::make_shared<ItemTicket>(gate_);
    if (stream_.sources_ended()) break;  // ended while this source waited for a slot; the ticket gives it back
    SourceEmitter emitter(*this, node, ticket, next_sequence);
    ticket.reset();  // the emitted envelopes now own it; an item that emitted nothing retires at once
    bool more = true;
    const auto begin = Clock::now();
    try {
      more = node.stage->generate(emitter);
      consecutive_failures = 0;
    } catch (const RunCancelled&) {
      stop_cancelled();
      break;
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
    if (options_.cancel && options_.cancel->load()) stop.store(true);  // the monitor no longer watches
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
    } catch (const RunCancelled&) {  // long work stopped at a step: the run ends cancelled, its state resumable
      stop.store(true);
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

}  // namespace histoflow::detail
