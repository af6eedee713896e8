// flowrun status DIR: how a scaled-out experiment stands, from what its runs left in the output folder
// (scale_out_files.hpp): every shard's state, the items of those that failed or were killed, the errors of the
// items that failed, the evaluation, and how to rerun what is missing.
#include <signal.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "cli_args.hpp"
#include "commands.hpp"
#include "histoflow/atomic_file.hpp"
#include "histoflow/errors.hpp"
#include "scale_out_files.hpp"

namespace histoflow::cli {
namespace {

std::optional<nlohmann::json> read_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::filesystem::file_time_type modified(const std::filesystem::path& file) {
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(file, ec);
  return ec ? std::filesystem::file_time_type::min() : time;
}

struct RunState {
  std::string state;   // completed, completed_with_errors, failed, cancelled, running, killed, unknown, not started
  std::string detail;  // who runs it, why it failed
  nlohmann::json summary;
  bool finished_well() const { return state == "completed" || state == "completed_with_errors"; }
  bool ended_badly() const { return state == "failed" || state == "cancelled" || state == "killed"; }
};

// A run's state from its run_started.json and run_summary.json in `folder` (a shard's, or the output folder).
RunState state_of(const std::filesystem::path& folder) {
  RunState run;
  const auto started = read_json(folder / "run_started.json");
  const auto summary = read_json(folder / "run_summary.json");
  const bool summary_is_of_this_start =
      summary && (!started || modified(folder / "run_summary.json") >= modified(folder / "run_started.json"));
  if (summary_is_of_this_start) {
    run.summary = *summary;
    run.state = summary->value("status", "unknown");
    run.detail = summary->value("fatal", "");
    return run;
  }
  if (!started) {
    run.state = "not started";
    return run;
  }
  const long pid = started->value("pid", 0L);
  const std::string host = started->value("host", "");
  std::string job;
  if (started->contains("slurm") && (*started)["slurm"].contains("SLURM_JOB_ID"))
    job = ", Slurm job " + (*started)["slurm"]["SLURM_JOB_ID"].get<std::string>();
  const std::string who = "pid " + std::to_string(pid) + " on " + host + job;
  if (host != this_host()) {
    run.state = "unknown";
    run.detail = "no summary yet (" + who + "): running, or ended without one (killed by SIGKILL, the node failed)";
  } else if (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)) {
    run.state = "running";
    run.detail = who;
  } else {
    run.state = "killed";
    run.detail = "ended without a summary (" + who + "; SIGKILL, out of memory, or the node failed)";
  }
  return run;
}

std::vector<std::string> shard_items(const std::filesystem::path& folder) {
  std::vector<std::string> items;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("items-", 0) != 0 || entry.path().extension() != ".txt") continue;
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) items.push_back(line);
  }
  return items;
}

std::string joined(const std::vector<std::string>& items, std::size_t most = 20) {
  std::string text;
  for (std::size_t i = 0; i < items.size() && i < most; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > most) text += ", ... (" + std::to_string(items.size() - most) + " more)";
  return text;
}

void print_errors(const nlohmann::json& summary, const std::string& indent) {
  if (!summary.contains("errors")) return;
  for (const auto& e : summary["errors"])
    std::cout << indent << "error: stage '" << e.value("stage", "") << "'"
              << (e.value("item", "").empty() ? "" : " item '" + e.value("item", "") + "'") << ": " << e.value("message", "") << "\n";
}

}  // namespace

int command_status(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun status DIR | GRAPH [--set ...]\n\n"
                 "How a scaled-out experiment stands (docs/scale-out.md): DIR is its output folder (or GRAPH names it).\n"
                 "Shows each extraction shard (completed, completed with errors, failed, cancelled, running, killed,\n"
                 "not started) with the items of every shard that did not finish and the errors of items that failed,\n"
                 "then the evaluation, and the commands that rerun what is missing. Exit status 1 when a shard or the\n"
                 "evaluation ended badly, else 0.\n";
    return 0;
  }
  const auto parsed = parse_args(args, {{"--set", true, true}});
  if (parsed.positionals.size() != 1) throw UsageError("expected an output folder or a graph file (see --help)");
  std::filesystem::path output = parsed.positionals.front();
  if (std::filesystem::is_regular_file(output)) {
    PluginLoader loader;
    GraphLoad load;
    if (!load_graph_reporting(output.string(), parsed, loader, load)) return 2;
    output = load.spec.experiment.output_dir;
  }
  if (!std::filesystem::is_directory(output)) throw UsageError("'" + output.string() + "' is not an output folder (nothing has run there)");

  const auto jobs = read_json(slurm_folder(output) / "jobs.json");
  // Shard folders by shard count: a cohort rerun with another N has two sets.
  std::map<std::int64_t, std::map<std::int64_t, std::filesystem::path>> sets;
  const std::regex shard_name("([0-9]+)-of-([0-9]+)");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(output / "shards", ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && std::regex_match(name, m, shard_name)) sets[std::stoll(m[2])][std::stoll(m[1])] = entry.path();
  }
  const std::int64_t submitted = jobs ? jobs->value("shards", std::int64_t{0}) : 0;
  if (submitted > 0) sets[submitted];  // the submitted count, even before any task ran

  bool bad = false;
  std::cout << "output folder: " << output.string() << "\n";
  if (jobs)
    std::cout << "submitted: extraction array job " << jobs->value("extract_job", "?") << ", evaluation job " << jobs->value("evaluate_job", "?")
              << "; logs in " << (slurm_folder(output) / "logs").string() << "\n";
  if (sets.empty()) std::cout << "extraction: no shard has run here (flowrun run --shard I/N or flowrun submit --slurm)\n";
  for (const auto& [count, folders] : sets) {
    std::map<std::string, int> tally;
    std::vector<std::int64_t> to_rerun;
    std::cout << "extraction in " << count << " shards:\n";
    for (std::int64_t index = 0; index < count; ++index) {
      const auto it = folders.find(index);
      const RunState run = it == folders.end() ? RunState{"not started", "", {}} : state_of(it->second);
      ++tally[run.state];
      std::cout << "  shard " << index << "/" << count << ": " << run.state;
      if (run.finished_well()) {
        std::cout << " (" << run.summary.value("items_generated", 0) << " items, " << run.summary.value("errors", nlohmann::json::array()).size() << " error record(s))";
      }
      if (!run.detail.empty()) std::cout << ": " << run.detail;
      std::cout << "\n";
      if (run.state == "completed_with_errors") print_errors(run.summary, "      ");
      if (run.ended_badly() || run.state == "unknown") {
        if (it != folders.end())
          if (const auto items = shard_items(it->second); !items.empty())
            std::cout << "      its items (a rerun restores those it finished): " << joined(items) << "\n";
        if (run.ended_badly()) to_rerun.push_back(index);
      }
    }
    std::cout << "  ";
    for (const auto& [state, n] : tally) std::cout << n << " " << state << (&state == &tally.rbegin()->first ? "\n" : ", ");
    if (!to_rerun.empty()) {
      bad = true;
      std::string list;
      for (const auto index : to_rerun) list += (list.empty() ? "" : ",") + std::to_string(index);
      if (submitted == count)  // the evaluation after the rerun, as flowrun submit chained them
        std::cout << "  rerun them, then the evaluation:\n    id=$(sbatch --parsable --array=" << list << " "
                  << (slurm_folder(output) / "extract.sbatch").string() << ") && sbatch --dependency=afterok:$id --kill-on-invalid-dep=yes "
                  << (slurm_folder(output) / "evaluate.sbatch").string() << "\n";
      else
        std::cout << "  rerun them: flowrun run GRAPH --stage-set extract --shard I/" << count << " for I in " << list << "\n";
    }
  }
  const RunState evaluation = state_of(output);
  std::cout << "evaluation: " << (evaluation.state == "not started" ? "not run yet" : evaluation.state);
  if (!evaluation.detail.empty()) std::cout << ": " << evaluation.detail;
  std::cout << "\n";
  if (evaluation.state == "completed_with_errors") print_errors(evaluation.summary, "  ");
  if (evaluation.finished_well() && evaluation.summary.contains("results"))
    for (const auto& r : evaluation.summary["results"])
      std::cout << "  result: " << r.value("stage", "") << ": " << r.value("what", "") << ": " << r.value("path", "") << "\n";
  return bad || evaluation.ended_badly() ? 1 : 0;
}

}  // namespace histoflow::cli
