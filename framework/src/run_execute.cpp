// The runtime: a validated GraphSpec becomes a oneTBB flow graph with bounded flow, batching, ordering,
// error records, end-of-stream flushes, cancellation and optional tracing. Run::execute orchestrates one
// run: create and open the stages, build the flow graph, drive the sources until quiescent, flush, close,
// then gather statistics and write the run summary.
#include <sys/resource.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "histoflow/atomic_file.hpp"
#include "histoflow/threads.hpp"
#include "run.hpp"
#include "run_summary.hpp"

namespace histoflow {

namespace detail {

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

// A shard's items, before any moves: `flowrun status` names them when the shard did not finish.
void Run::record_shard_items() {
  for (const auto& node : nodes_) {
    if (!node->contract.is_source()) continue;
    std::string lines;
    for (const auto& id : node->stage->shard_items()) lines += id + "\n";
    write_file_atomically(summary_folder(spec_, options_) / ("items-" + node->spec.id + ".txt"), lines);
  }
}

RunResult Run::execute() {
  RunResult result;
  const auto start = Clock::now();
  const std::int64_t threads = resolve_thread_count(options_.threads.value_or(spec_.run.threads));
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
      write_file_atomically(summary_folder(spec_, options_) / "resolved_graph.toml", resolved_graph_toml(spec_));
    create_stages();
    plan_resumption();
    open_stages();
    if (options_.shard.split()) record_shard_items();
  } catch (const RunCancelled&) {  // a stage's open() stopped at a step: the run is cancelled
    stop.store(true);
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

  // Cancelled before any item moved (a signal while plugins loaded or stages opened): every stage opened, so that a
  // stage that cannot open is still reported, but nothing runs.
  if (options_.cancel && options_.cancel->load()) stop.store(true);
  if (!failed_.load() && !stop.load()) {
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
  result.warnings = errors.warnings();
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
  result.sources_ended = stream_.reason();
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
  if (options_.write_outputs) finish_with_run_summary(spec_, options_, result);
  return result;
}

}  // namespace detail

RunResult run_graph(const GraphSpec& spec, const RunOptions& options) {
  if (spec.phases > 1) return detail::run_phases(spec, options);
  detail::Run run(spec, options);
  return run.execute();
}

}  // namespace histoflow
