// The stages' lifecycle in a run: created and opened before any item moves (a failure there fails the run,
// naming the stage), closed whatever happened; their result files and statistics; how their errors are
// recorded and how a fatal one stops the run.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "histoflow/registry.hpp"
#include "lineage.hpp"
#include "run.hpp"

namespace histoflow::detail {

namespace {

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

}  // namespace

void Run::create_stages() {
  // Stage ids double as TBB-independent indices; successors are wired from the validated edges.
  for (std::size_t i = 0; i < spec_.stages.size(); ++i) {
    const StageSpec& s = spec_.stages[i];
    StageContext context{s.id, s.contract, Params(s.params), spec_.experiment, &errors, progress_[i].get(), &stream_, options_.shard};
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
    } catch (const RunCancelled&) {  // a trainer's open() evaluating its checkpoint stopped at a step
      throw;
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
          node.restored.load(), node.skipped.load(), static_cast<double>(node.open_ns) / 1e9, node.left_to_others.load()};
}

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

void Run::stop_cancelled() {
  stop.store(true);
  if (graph_) graph_->cancel();  // queued tasks are dropped rather than run as no-ops
}

}  // namespace histoflow::detail
