// A graph whose stages wait for others (`after`) runs as phases, one after the other: each phase is a run of
// its own stages (every edge stays within a phase), so a phase's stages open only once every earlier phase
// has finished and closed — a finetuned model's encoder loads the weights the finetuning phase exported. The
// phases share the output folder, the resolved graph and one run summary; a failed or cancelled phase ends
// the run. A rerun resumes each phase's resumable stages as a single-phase run would.
#include <algorithm>
#include <iostream>
#include <map>

#include "histoflow/atomic_file.hpp"
#include "run.hpp"
#include "run_summary.hpp"

namespace histoflow::detail {
namespace {

// The stages of one phase as a graph of their own.
GraphSpec phase_spec(const GraphSpec& spec, std::size_t phase) {
  GraphSpec sub;
  sub.file = spec.file;
  sub.experiment = spec.experiment;
  sub.run = spec.run;
  sub.plugin_paths = spec.plugin_paths;
  std::vector<std::size_t> index(spec.stages.size(), std::string::npos);
  for (std::size_t i = 0; i < spec.stages.size(); ++i)
    if (spec.stages[i].phase == phase) {
      index[i] = sub.stages.size();
      sub.stages.push_back(spec.stages[i]);
      sub.stages.back().phase = 0;
    }
  for (const auto& e : spec.edges)
    if (index[e.from] != std::string::npos && index[e.to] != std::string::npos)
      sub.edges.push_back({index[e.from], e.from_port, index[e.to], e.to_port});
  for (const std::size_t i : spec.topo_order)
    if (index[i] != std::string::npos) sub.topo_order.push_back(index[i]);
  return sub;
}

// trace.json -> trace.phase2.json for the second phase.
std::filesystem::path phase_trace(const std::filesystem::path& file, std::size_t phase) {
  if (file.empty() || phase == 0) return file;
  return file.parent_path() / (file.stem().string() + ".phase" + std::to_string(phase + 1) + file.extension().string());
}

}  // namespace

RunResult run_phases(const GraphSpec& spec, const RunOptions& options) {
  RunResult total;
  if (options.write_outputs)
    write_file_atomically(summary_folder(spec, options) / "resolved_graph.toml", resolved_graph_toml(spec));
  std::map<std::string, StageStats> stats;
  for (std::size_t phase = 0; phase < spec.phases; ++phase) {
    const GraphSpec sub = phase_spec(spec, phase);
    if (sub.stages.empty()) continue;
    if (options.progress != ProgressMode::Off) {
      std::string ids;
      for (const std::size_t i : sub.topo_order) ids += (ids.empty() ? "" : ", ") + sub.stages[i].id;
      std::cerr << "phase " << phase + 1 << "/" << spec.phases << ": " << ids << "\n";
    }
    RunOptions phase_options = options;
    phase_options.write_outputs = false;  // one resolved graph and one summary for the whole run
    phase_options.trace_file = phase_trace(options.trace_file, phase);
    Run run(sub, phase_options);
    RunResult r = run.execute();
    for (auto& s : r.stages) stats[s.id] = std::move(s);
    total.errors.insert(total.errors.end(), r.errors.begin(), r.errors.end());
    total.warnings.insert(total.warnings.end(), r.warnings.begin(), r.warnings.end());
    total.results.insert(total.results.end(), r.results.begin(), r.results.end());
    total.items_generated += r.items_generated;
    total.items_retired += r.items_retired;
    total.peak_in_flight = std::max(total.peak_in_flight, r.peak_in_flight);
    total.peak_tiles_in_flight = std::max(total.peak_tiles_in_flight, r.peak_tiles_in_flight);
    total.wall_seconds += r.wall_seconds;
    total.peak_rss_mb = std::max(total.peak_rss_mb, r.peak_rss_mb);
    if (!r.sources_ended.empty())
      total.sources_ended += (total.sources_ended.empty() ? "" : "; ") + ("phase " + std::to_string(phase + 1) + ": " + r.sources_ended);
    total.status = r.status;
    if (r.status == RunStatus::Failed) {
      total.fatal_message = "phase " + std::to_string(phase + 1) + ": " + r.fatal_message;
      break;
    }
    if (r.status == RunStatus::Cancelled) break;
  }
  if (total.status == RunStatus::Completed && !total.errors.empty()) total.status = RunStatus::CompletedWithErrors;
  for (std::size_t phase = 0; phase < spec.phases; ++phase)  // phase by phase, as they ran
    for (const std::size_t i : spec.topo_order) {
      if (spec.stages[i].phase != phase) continue;
      const auto it = stats.find(spec.stages[i].id);
      total.stages.push_back(it != stats.end() ? it->second : StageStats{spec.stages[i].id});
    }
  if (options.write_outputs) finish_with_run_summary(spec, options, total);
  return total;
}

}  // namespace histoflow::detail
