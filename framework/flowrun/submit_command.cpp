// flowrun submit GRAPH --slurm: the graph as two Slurm jobs, an array job whose tasks extract one shard each, and the
// evaluation job that starts once every task has succeeded (--dependency=afterok). Writes the job scripts into
// OUTPUT/slurm/, submits them with sbatch and prints the job ids and where the logs go; --dry-run prints the scripts.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_args.hpp"
#include "commands.hpp"
#include "histoflow/atomic_file.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/scale_out.hpp"
#include "scale_out_files.hpp"

namespace histoflow::cli {
namespace {

constexpr int kInvalid = 2;

// The experiment's name as a job name: letters, digits, '-', '_' and '.'.
std::string job_name(const std::string& experiment) {
  std::string name = experiment;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return name;
}

std::string shell_quoted(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::filesystem::path this_executable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("flowrun") : path;
}

// A flag's number, when given, into `into`; at least `low`.
void count_flag(const ParsedArgs& parsed, const char* flag, std::int64_t& into, std::int64_t low) {
  if (!parsed.has(flag)) return;
  try {
    into = std::stoll(parsed.value(flag));
  } catch (const std::exception&) {
    throw UsageError(std::string(flag) + " expects a number");
  }
  if (into < low) throw UsageError(std::string(flag) + " must be >= " + std::to_string(low));
}

// The resources of one job: the graph's [slurm] table, then the flags.
SlurmResources with_flags(SlurmResources resources, const ParsedArgs& parsed) {
  // Written into #SBATCH lines: one word each, as the [slurm] table's values.
  const auto word = [&](const char* flag, std::string& into) {
    if (!parsed.has(flag)) return;
    into = parsed.value(flag);
    if (!is_sbatch_word(into))
      throw UsageError(std::string(flag) + " must be one word without spaces or quotes, not '" + into + "'");
  };
  word("--partition", resources.partition);
  word("--account", resources.account);
  word("--time", resources.time);
  word("--mem", resources.memory);
  count_flag(parsed, "--cpus", resources.cpus, 1);
  count_flag(parsed, "--gpus", resources.gpus, 0);
  return resources;
}

void write_resources(std::ostream& out, const SlurmResources& r) {
  if (!r.partition.empty()) out << "#SBATCH --partition=" << r.partition << "\n";
  if (!r.account.empty()) out << "#SBATCH --account=" << r.account << "\n";
  if (!r.time.empty()) out << "#SBATCH --time=" << r.time << "\n";
  if (!r.memory.empty()) out << "#SBATCH --mem=" << r.memory << "\n";
  out << "#SBATCH --ntasks=1\n";
  if (r.cpus) out << "#SBATCH --cpus-per-task=" << r.cpus << "\n";
  if (r.gpus) out << "#SBATCH --gres=gpu:" << r.gpus << "\n";
  for (const auto& option : r.sbatch_options) out << "#SBATCH " << option << "\n";
}

struct Job {
  std::string script;
  std::filesystem::path file;
};

// The command line both jobs share: flowrun, the graph, the overrides, the threads Slurm gave the task.
std::string flowrun_line(const std::filesystem::path& graph, const ParsedArgs& parsed, const SlurmResources& r) {
  std::string line = "exec " + shell_quoted(this_executable().string()) + " run " + shell_quoted(std::filesystem::absolute(graph).string());
  if (auto it = parsed.options.find("--set"); it != parsed.options.end())
    for (const auto& text : it->second)
      if (text.rfind("slurm.", 0) != 0) line += " --set " + shell_quoted(text);  // [slurm] is this command's, not the run's
  for (const auto& folder : plugin_folders_from_command_line())
    line += " --plugins " + shell_quoted(std::filesystem::absolute(folder).string());
  if (r.cpus) line += " --threads " + std::to_string(r.cpus);
  return line + " --progress lines";
}

Job extract_job(const GraphSpec& spec, const std::filesystem::path& graph, const ParsedArgs& parsed, std::int64_t shards,
                std::int64_t parallel, const SlurmResources& r) {
  const auto folder = slurm_folder(spec.experiment.output_dir);
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Extraction of '" << job_name(spec.experiment.name) << "' in " << shards << " shards, one per array task (flowrun submit).\n"
      << "# Rerun shard I alone with: sbatch --array=I " << (folder / "extract.sbatch").string() << "\n"
      << "#SBATCH --job-name=" << job_name(spec.experiment.name) << "-extract\n"
      << "#SBATCH --array=0-" << shards - 1 << (parallel ? "%" + std::to_string(parallel) : "") << "\n"
      << "#SBATCH --output=" << (folder / "logs" / "extract-%A_%a.out").string() << "\n";
  write_resources(out, r);
  // The shard count is written here, not read from SLURM_ARRAY_TASK_COUNT: a task resubmitted alone is an array of one.
  // Failed items are in the shard's summary; the task still succeeds, so that the evaluation starts (and reports them).
  out << flowrun_line(graph, parsed, r) << " --stage-set extract --shard \"${SLURM_ARRAY_TASK_ID}/" << shards
      << "\" --allow-item-errors\n";
  return {out.str(), folder / "extract.sbatch"};
}

Job evaluate_job(const GraphSpec& spec, const std::filesystem::path& graph, const ParsedArgs& parsed, const SlurmResources& r) {
  const auto folder = slurm_folder(spec.experiment.output_dir);
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Evaluation of '" << job_name(spec.experiment.name) << "' once every extraction shard has succeeded (flowrun submit): the\n"
      << "# whole graph, restoring what the shards wrote.\n"
      << "#SBATCH --job-name=" << job_name(spec.experiment.name) << "-evaluate\n"
      << "#SBATCH --output=" << (folder / "logs" / "evaluate-%j.out").string() << "\n";
  write_resources(out, r);
  out << flowrun_line(graph, parsed, r) << " --stage-set evaluate\n";
  return {out.str(), folder / "evaluate.sbatch"};
}

// Runs sbatch with `arguments`; returns the job id it printed on its last line of standard output (--parsable: "id" or
// "id;cluster"). What a site's submit filter prints besides (notices on stderr) is passed on, not parsed.
std::string sbatch(const std::string& arguments) {
  const char* program = std::getenv("HISTOFLOW_SBATCH");
  const std::string command = std::string(program && *program ? program : "sbatch") + " --parsable " + arguments;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run sbatch: " + command);
  std::string output;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  const std::string last = output.substr(output.rfind('\n') == std::string::npos ? 0 : output.rfind('\n') + 1);
  const std::string id = last.substr(0, last.find(';'));
  if (status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error("sbatch failed (" + command + ", exit status " + std::to_string(WEXITSTATUS(status)) + ")" +
                             (output.empty() ? std::string() : ":\n" + output));
  return id;
}

}  // namespace

int command_submit(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun submit GRAPH --slurm [--shards N] [--parallel K] [--partition P] [--account A]\n"
                 "                        [--cpus C] [--mem M] [--gpus G] [--time T] [--set STAGE.PARAM=VALUE]... [--dry-run]\n\n"
                 "Runs GRAPH on a Slurm cluster: an array job of N tasks, each extracting one shard of the slides\n"
                 "(flowrun run --stage-set extract --shard I/N; at most K at once), then the evaluation job (--stage-set\n"
                 "evaluate) with --dependency=afterok on the array. Resources come from the graph's [slurm] and\n"
                 "[slurm.evaluate] tables; the flags override both jobs. The scripts are written to OUTPUT/slurm/ and\n"
                 "submitted with sbatch (HISTOFLOW_SBATCH names another program); the job ids, logs and the status\n"
                 "command are printed. --dry-run prints the scripts and submits nothing. See docs/scale-out.md.\n";
    return 0;
  }
  const auto parsed = parse_args(args, {{"--slurm"}, {"--shards", true}, {"--parallel", true}, {"--partition", true},
                                        {"--account", true}, {"--cpus", true}, {"--mem", true}, {"--gpus", true},
                                        {"--time", true}, {"--set", true, true}, {"--dry-run"}});
  if (!parsed.has("--slurm")) throw UsageError("flowrun submit needs a scheduler: --slurm (the only one so far)");
  if (parsed.positionals.size() != 1) throw UsageError("expected exactly one graph file (see --help)");
  const std::filesystem::path graph = parsed.positionals.front();
  PluginLoader loader;
  GraphLoad load;
  if (!load_graph_reporting(graph.string(), parsed, loader, load)) return kInvalid;

  std::int64_t shards = load.spec.slurm.shards, parallel = load.spec.slurm.parallel;
  count_flag(parsed, "--shards", shards, 1);
  count_flag(parsed, "--parallel", parallel, 1);
  if (shards < 1) throw UsageError("how many shards? --shards N, or shards = N in the graph's [slurm] table");

  // Everything the tasks will check, checked now: a graph that cannot be split fails here, not on the cluster.
  std::vector<std::string> left_out;
  GraphLoad part = select_stage_set(load.spec, StageSet::Extract, &left_out);
  auto problems = part.diagnostics;
  if (part.ok()) problems = sharding_problems(part.spec, {0, shards});
  for (const auto& d : problems) std::cerr << d.format() << '\n';
  if (!problems.empty()) {
    std::cerr << graph.string() << ": the graph cannot be split into shards; nothing was submitted\n";
    return kInvalid;
  }

  if (load.spec.experiment.output_dir.string().find_first_of(" \t\n") != std::string::npos)
    throw UsageError("the output folder '" + load.spec.experiment.output_dir.string() +
                     "' has a space, which a #SBATCH --output line cannot hold: choose another [experiment] output");
  const Job extract = extract_job(load.spec, graph, parsed, shards, parallel, with_flags(load.spec.slurm.extract, parsed));
  const Job evaluate = evaluate_job(load.spec, graph, parsed, with_flags(load.spec.slurm.evaluate, parsed));
  if (parsed.has("--dry-run")) {
    std::cout << "# " << extract.file.string() << "\n" << extract.script << "\n# " << evaluate.file.string() << " (after every task of "
              << "the first succeeded)\n" << evaluate.script;
    if (!left_out.empty()) {
      std::cout << "# stages only the evaluation runs:";
      for (const auto& id : left_out) std::cout << " " << id;
      std::cout << "\n";
    }
    return 0;
  }
  const auto folder = slurm_folder(load.spec.experiment.output_dir);
  std::filesystem::create_directories(folder / "logs");
  write_file_atomically(extract.file, extract.script);
  write_file_atomically(evaluate.file, evaluate.script);
  const std::string extract_id = sbatch(shell_quoted(extract.file.string()));
  std::string evaluate_id;
  try {
    // --kill-on-invalid-dep: a failed task ends the evaluation job at once instead of leaving it pending forever.
    evaluate_id = sbatch("--dependency=afterok:" + extract_id + " --kill-on-invalid-dep=yes " + shell_quoted(evaluate.file.string()));
  } catch (const std::exception&) {
    std::cerr << "flowrun submit: the extraction array job " << extract_id << " was submitted, the evaluation job was not\n";
    throw;
  }
  const nlohmann::json jobs{{"extract_job", extract_id}, {"evaluate_job", evaluate_id}, {"shards", shards},
                            {"graph", std::filesystem::absolute(graph).string()}};
  write_file_atomically(folder / "jobs.json", jobs.dump(2) + "\n");
  std::cout << "extraction: array job " << extract_id << " (" << shards << " tasks" << (parallel ? ", " + std::to_string(parallel) + " at once" : "")
            << "), logs " << (folder / "logs" / ("extract-" + extract_id + "_<task>.out")).string() << "\n"
            << "evaluation: job " << evaluate_id << " after every task succeeded, log "
            << (folder / "logs" / ("evaluate-" + evaluate_id + ".out")).string() << "\n"
            << "follow it with: flowrun status " << load.spec.experiment.output_dir.string() << "\n";
  return 0;
}

}  // namespace histoflow::cli
