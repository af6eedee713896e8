// A run's result as people and scripts see it: run_summary.json, the summary `flowrun run` prints, and the
// exit code.
#include "run_summary.hpp"

#include <nlohmann/json.hpp>
#include <iomanip>
#include <sstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/version.hpp"

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

namespace detail {

void write_run_summary(const GraphSpec& spec, const RunOptions& options, const RunResult& result) {
  nlohmann::json summary;
  summary["histoflow_version"] = kVersion;
  summary["experiment"] = spec.experiment.name;
  summary["graph"] = spec.file.string();
  if (options.shard.split()) summary["shard"] = {{"index", options.shard.index}, {"count", options.shard.count}};
  summary["status"] = result.status == RunStatus::Completed             ? "completed"
                      : result.status == RunStatus::CompletedWithErrors ? "completed_with_errors"
                      : result.status == RunStatus::Failed              ? "failed"
                                                                        : "cancelled";
  if (!result.fatal_message.empty()) summary["fatal"] = result.fatal_message;
  if (!result.sources_ended.empty()) summary["input_ended_early"] = result.sources_ended;
  summary["wall_seconds"] = result.wall_seconds;
  summary["peak_rss_mb"] = result.peak_rss_mb;
  summary["items_generated"] = result.items_generated;
  summary["items_retired"] = result.items_retired;
  summary["peak_in_flight"] = result.peak_in_flight;
  summary["peak_tiles_in_flight"] = result.peak_tiles_in_flight;
  summary["max_tiles_in_flight"] = spec.run.max_tiles_in_flight;
  summary["max_in_flight"] = spec.run.max_in_flight;
  auto& errors_json = summary["errors"] = nlohmann::json::array();
  for (const auto& e : result.errors)
    errors_json.push_back({{"stage", e.stage}, {"item", e.item}, {"sequence", e.sequence}, {"message", e.message}});
  auto& warnings_json = summary["warnings"] = nlohmann::json::array();
  for (const auto& w : result.warnings)
    warnings_json.push_back({{"stage", w.stage}, {"item", w.item}, {"sequence", w.sequence}, {"message", w.message}});
  auto& stages_json = summary["stages"] = nlohmann::json::array();
  for (const auto& s : result.stages)
    stages_json.push_back({{"id", s.id}, {"calls", s.calls}, {"errors", s.errors}, {"busy_seconds", s.busy_seconds},
                           {"open_seconds", s.open_seconds}, {"restored", s.restored}, {"skipped", s.skipped},
                           {"left_to_others", s.left_to_others}});
  auto& results_json = summary["results"] = nlohmann::json::array();
  for (const auto& r : result.results)
    results_json.push_back({{"stage", r.stage}, {"what", r.what}, {"path", r.path.string()}});
  write_file_atomically(summary_folder(spec, options) / "run_summary.json", summary.dump(2) + "\n");
}

}  // namespace detail

std::string format_run_summary(const RunResult& result) {
  std::ostringstream out;
  const char* status = result.status == RunStatus::Completed             ? "completed"
                       : result.status == RunStatus::CompletedWithErrors ? "completed with errors"
                       : result.status == RunStatus::Failed              ? "FAILED"
                                                                         : "cancelled";
  out << "run " << status << ": " << result.items_generated << " items in " << std::fixed << std::setprecision(2)
      << result.wall_seconds << " s (peak " << result.peak_in_flight << " in flight)\n";
  if (!result.fatal_message.empty()) out << "fatal: " << result.fatal_message << '\n';
  if (!result.sources_ended.empty()) out << "input ended early: " << result.sources_ended << '\n';
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
  if (!result.warnings.empty()) {
    out << result.warnings.size() << " warning(s):\n";
    for (const auto& w : result.warnings)
      out << "  stage '" << w.stage << "'" << (w.item.empty() ? "" : " item '" + w.item + "'") << ": " << w.message << '\n';
  }
  if (!result.errors.empty()) {
    out << result.errors.size() << " error record(s):\n";
    for (const auto& e : result.errors)
      out << "  stage '" << e.stage << "'" << (e.item.empty() ? "" : " item '" + e.item + "'") << ": " << e.message << '\n';
  }
  return out.str();
}

std::filesystem::path summary_folder(const GraphSpec& spec, const RunOptions& options) {
  return options.summary_dir.empty() ? spec.experiment.output_dir : options.summary_dir;
}

void detail::finish_with_run_summary(const GraphSpec& spec, const RunOptions& options, RunResult& result) {
  try {
    write_run_summary(spec, options, result);
  } catch (const std::exception& e) {
    if (result.status == RunStatus::Completed) result.status = RunStatus::Failed;
    if (result.fatal_message.empty()) result.fatal_message = std::string("writing the run summary: ") + e.what();
  }
}

}  // namespace histoflow
