#include "commands.hpp"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "../src/nearest_name.hpp"
#include "cli_args.hpp"
#include "histoflow/describe.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/kind.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/runtime.hpp"
#include "histoflow/scale_out.hpp"
#include "scale_out_files.hpp"
#include "histoflow/tracer.hpp"
#include "histoflow/version.hpp"

namespace histoflow::cli {
namespace {

constexpr int kInvalid = 2;

std::atomic<bool> interrupted{false};
// SIGINT (Ctrl-C) or SIGTERM (Slurm's scancel, a time limit): the run stops within a step of its current work,
// writes its run summary (status "cancelled") and keeps what finished; the same command resumes the rest. A second
// Ctrl-C leaves at once; a repeated SIGTERM changes nothing (Slurm's SIGKILL comes after its grace period anyway).
void on_interrupt(int signal) {
  static constexpr char kTerm[] = "\nflowrun: SIGTERM: stopping; finished work is kept and the same command resumes the rest\n";
  static constexpr char kInt[] = "\nflowrun: interrupted: stopping; finished work is kept and the same command resumes the rest "
                                 "(Ctrl-C again quits at once)\n";
  if (interrupted.exchange(true)) {
    if (signal == SIGINT) ::_exit(130);
    return;
  }
  // write(2) is async-signal-safe; its result is of no use here, and the interrupted code's errno is kept.
  const int saved_errno = errno;
  if (signal == SIGTERM) {
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kTerm, sizeof kTerm - 1);
  } else {
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kInt, sizeof kInt - 1);
  }
  errno = saved_errno;
}

std::vector<Override> overrides_of(const ParsedArgs& parsed) {
  std::vector<Override> overrides;
  if (auto it = parsed.options.find("--set"); it != parsed.options.end())
    for (const auto& text : it->second) overrides.push_back(parse_override(text));
  return overrides;
}

}  // namespace

std::vector<std::filesystem::path>& plugin_folders_from_command_line() {
  static std::vector<std::filesystem::path> folders;
  return folders;
}

bool load_plugins(PluginLoader& loader, bool quiet_notes) {
  loader.load_defaults(plugin_folders_from_command_line());
  if (!quiet_notes)
    for (const auto& note : loader.notes()) std::cerr << "note: " << note << '\n';
  for (const auto& warning : loader.warnings()) std::cerr << "warning: " << warning << '\n';
  for (const auto& error : loader.errors()) std::cerr << "error: " << error << '\n';
  return loader.errors().empty();
}

// Loads and validates; prints every diagnostic. Returns false when the graph is invalid.
bool load_graph_reporting(const std::string& file, const ParsedArgs& parsed, PluginLoader& loader, GraphLoad& load) {
  const bool plugins_ok = load_plugins(loader);
  load = load_graph(file, overrides_of(parsed), loader);
  for (const auto& d : load.diagnostics) std::cerr << d.format() << '\n';
  if (!load.ok()) std::cerr << file << ": " << load.diagnostics.size() << " error(s); nothing was run\n";
  return plugins_ok && load.ok();
}

namespace {

// Narrows a loaded graph to the stage set and checks that it can run as the shard; prints every problem.
bool select_part(const std::string& file, StageSet stage_set, const RunShard& shard, GraphLoad& load, std::vector<std::string>& left_out) {
  GraphLoad part = select_stage_set(load.spec, stage_set, &left_out);
  for (const auto& d : part.diagnostics) std::cerr << d.format() << '\n';
  if (!part.ok()) return false;
  const auto problems = sharding_problems(part.spec, shard);
  for (const auto& d : problems) std::cerr << d.format() << '\n';
  if (!problems.empty()) {
    std::cerr << file << ": " << problems.size() << " stage(s) cannot run in shards; nothing was run\n";
    return false;
  }
  load = std::move(part);
  return true;
}

std::string single_positional(const ParsedArgs& parsed, const char* what) {
  if (parsed.positionals.size() != 1) throw UsageError(std::string("expected exactly one ") + what + " (see --help)");
  return parsed.positionals.front();
}

}  // namespace

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

int command_run(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun run GRAPH [--set STAGE.PARAM=VALUE]... [--trace FILE] [--threads N] [--dry-run]\n"
                 "                         [--progress auto|bar|lines|off] [--stage-set extract|evaluate|all]\n"
                 "                         [--shard I/N] [--allow-item-errors] [--report]\n\n"
                 "Validates GRAPH, then runs it. --set overrides any graph value (repeatable); --trace writes Chrome\n"
                 "trace JSON and prints a per-stage summary; --threads sets worker threads (default: [run] threads,\n"
                 "0 = all cores); --dry-run validates and prints the plan without running.\n"
                 "Scale-out (docs/scale-out.md): --stage-set extract runs only the per-item stages (no stage that needs\n"
                 "every item, such as mil_cv); evaluate (the default, like all) runs the whole graph, restoring what shards\n"
                 "wrote. --shard I/N runs shard I of N of the source items (with --stage-set extract in a Slurm array\n"
                 "task: read from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT); its summary goes to\n"
                 "OUTPUT/shards/I-of-N/ (an extraction of every item: OUTPUT/shards/0-of-1/).\n"
                 "--report (or [run] report = true): when the run ends, however it ends, write OUTPUT/report.html (see\n"
                 "`flowrun report --help`); not for a shard or an extraction.\n"
                 "--allow-item-errors: exit 0 when the run completed although some items failed (they are in the summary\n"
                 "and `flowrun status`), so that a cluster counts the task as done.\n"
                 "Exit status: 0 success, 1 some items failed or the run failed, 2 invalid graph, 130 interrupted\n"
                 "(SIGINT or SIGTERM: the run stops within a step of its current work, its summary says cancelled, and\n"
                 "the same command resumes it).\n";
    return 0;
  }
  const auto parsed = parse_args(args, {{"--set", true, true}, {"--trace", true}, {"--threads", true}, {"--dry-run"},
                                        {"--progress", true}, {"--stage-set", true}, {"--shard", true}, {"--allow-item-errors"},
                                        {"--report"}});
  const std::string file = single_positional(parsed, "graph file");
  const StageSet stage_set = parse_stage_set(parsed.value("--stage-set", "all"));
  // In a Slurm array the task's shard is read only for an extraction: a sweep of whole runs is an array too.
  const RunShard shard = parsed.has("--shard")          ? parse_shard(parsed.value("--shard"))
                         : stage_set == StageSet::Extract ? shard_of_this_task()
                                                          : RunShard{};
  // From the start: a signal while plugins load or the graph validates must not kill the process without a summary.
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  PluginLoader loader;
  GraphLoad load;
  if (!load_graph_reporting(file, parsed, loader, load)) return kInvalid;
  std::vector<std::string> left_out;
  if (!select_part(file, stage_set, shard, load, left_out)) return kInvalid;

  RunOptions options;
  options.shard = shard;
  // Extraction keeps its summary beside the shards' (status reports the top-level one as the evaluation).
  if (shard.split() || stage_set == StageSet::Extract) options.summary_dir = shard_folder(load.spec.experiment.output_dir, shard);
  if (parsed.has("--threads")) {
    try {
      options.threads = std::stoll(parsed.value("--threads"));
    } catch (const std::exception&) {
      throw UsageError("--threads expects a number");
    }
    if (*options.threads < 0) throw UsageError("--threads must be >= 0");
  }
  if (parsed.has("--trace")) options.trace_file = std::filesystem::absolute(parsed.value("--trace"));
  const std::string progress = parsed.value("--progress", "auto");
  if (progress == "auto") options.progress = ProgressMode::Auto;
  else if (progress == "bar") options.progress = ProgressMode::Bar;
  else if (progress == "lines") options.progress = ProgressMode::Lines;
  else if (progress == "off") options.progress = ProgressMode::Off;
  else throw UsageError("--progress must be auto, bar, lines or off");

  if (parsed.has("--dry-run")) {
    std::cout << "graph '" << load.spec.experiment.name << "' is valid; it would run these stages in order";
    if (shard.split()) std::cout << " as shard " << shard.index << "/" << shard.count;
    std::cout << ":\n";
    for (std::size_t index : load.spec.topo_order)
      std::cout << "  " << load.spec.stages[index].id << " (" << load.spec.stages[index].type << ")\n";
    if (!left_out.empty()) {
      std::cout << "left out (--stage-set extract: they need every item):";
      for (const auto& id : left_out) std::cout << " " << id;
      std::cout << "\n";
    }
    std::cout << "output folder: " << load.spec.experiment.output_dir.string() << "\n";
    return 0;
  }

  if (stage_set != StageSet::All || shard.split()) record_run_start(summary_folder(load.spec, options));
  options.cancel = &interrupted;
  const RunResult result = run_graph(load.spec, options);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);

  std::cout << format_run_summary(result);
  std::cout << "outputs: " << load.spec.experiment.output_dir.string() << "\n";
  if (!options.summary_dir.empty()) std::cout << "shard summary: " << (options.summary_dir / "run_summary.json").string() << "\n";
  if (!options.trace_file.empty() && std::filesystem::exists(options.trace_file)) {
    std::cout << "trace: " << options.trace_file.string() << "\n";
    try {
      std::cout << format_trace_summary(summarize_trace(options.trace_file));
    } catch (const std::exception& e) {  // the run's outcome and its report do not depend on the trace
      std::cerr << "trace summary: " << e.what() << "\n";
    }
  }
  // The report covers the whole experiment: a shard or an extraction leaves it to the evaluation run.
  if ((parsed.has("--report") || load.spec.run.report) && stage_set != StageSet::Extract && !shard.split())
    print_report(load.spec.experiment.output_dir, std::cout);
  if (parsed.has("--allow-item-errors") && result.status == RunStatus::CompletedWithErrors) return 0;
  return result.exit_code();
}

int command_validate(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun validate GRAPH [--set STAGE.PARAM=VALUE]...\n\n"
                 "Checks GRAPH without running it and reports every problem at once, each with file:line:column\n"
                 "and the stage id. Exit status 0 when valid, 2 when not.\n";
    return 0;
  }
  const auto parsed = parse_args(args, {{"--set", true, true}});
  const std::string file = single_positional(parsed, "graph file");
  PluginLoader loader;
  GraphLoad load;
  if (!load_graph_reporting(file, parsed, loader, load)) return kInvalid;
  std::cout << file << ": valid (" << load.spec.stages.size() << " stages, " << load.spec.edges.size() << " edges"
            << (load.spec.phases > 1 ? ", " + std::to_string(load.spec.phases) + " phases" : "") << ")\n";
  return 0;
}

namespace {

std::string origin_text(const std::string& origin) {
  if (origin == "build") return "the build's plugin folder";
  if (origin == "installed") return "the installed plugin folder";
  return origin;  // HISTOFLOW_PLUGIN_PATH, --plugins, [plugins] path
}

}  // namespace

int command_plugins(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun plugins [--plugins DIR]...\n\nLists the plugin libraries found with their versions, stage types\n"
                 "and what else they register (backbones), and where each was found: flowrun's own plugin folder\n"
                 "(build/plugins beside a build's flowrun, PREFIX/lib/histoflow/plugins when installed), then the\n"
                 "folders in HISTOFLOW_PLUGIN_PATH, then those given with --plugins. Warns about a library in the\n"
                 "build's plugin folder that the build did not produce.\n";
    return 0;
  }
  parse_args(args, {});
  PluginLoader loader;
  const bool ok = load_plugins(loader, false);
  std::cout << "histoflow " << kVersion << " (plugin ABI " << kPluginAbiVersion << ", " << kCxxAbi << ")\n";
  for (const auto& plugin : loader.plugins()) {
    std::cout << "\n" << plugin.name << "  " << plugin.file.string() << "\n  " << plugin.description << "\n";
    if (!plugin.origin.empty()) std::cout << "  found in: " << origin_text(plugin.origin) << "\n";
    std::cout << "  built for histoflow " << plugin.framework_version;
    if (!plugin.torch_version.empty()) std::cout << ", LibTorch " << plugin.torch_version;
    std::cout << "\n";
    if (!plugin.stage_types.empty()) {
      std::cout << "  stages:";
      for (const auto& type : plugin.stage_types) std::cout << " " << type;
      std::cout << "\n";
    }
    if (!plugin.kinds.empty()) {
      std::cout << "  packet kinds:";
      for (const auto& kind : plugin.kinds) std::cout << " " << kind;
      std::cout << "\n";
    }
    // Catalogue entries, one line per category ("backbones: ..."); entries come sorted by category.
    for (std::size_t i = 0; i < plugin.entries.size(); ++i) {
      const bool first = i == 0 || plugin.entries[i - 1].first != plugin.entries[i].first;
      if (first) std::cout << (i ? "\n" : "") << "  " << plugin.entries[i].first << "s:";
      std::cout << " " << plugin.entries[i].second;
    }
    if (!plugin.entries.empty()) std::cout << "\n";
  }
  return ok ? 0 : kInvalid;
}

int command_describe(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun describe [STAGE | KIND]\n       flowrun describe kind KIND\n       flowrun describe kinds\n"
                 "       flowrun describe backbone NAME\n\n"
                 "Shows a stage type's ports, parameters (types, defaults, ranges, docs) and an example TOML snippet,\n"
                 "or what a packet kind carries (tensor dtype and shape, attributes with types) and who declares it.\n"
                 "Without an argument, lists every stage type and packet kind; `describe kinds` lists the kinds.\n"
                 "`describe backbone NAME` shows one of torch_encoder's backbones (see `flowrun backbones`).\n";
    return 0;
  }
  const auto parsed = parse_args(args, {});
  if (parsed.positionals.size() == 2 && parsed.positionals[0] == "backbone") return describe_backbone(parsed.positionals[1]);
  PluginLoader loader;
  load_plugins(loader);
  auto& registry = Registry::instance();
  const auto list_kinds = [&] {
    for (const auto& name : registry.kind_names()) std::cout << "  " << name << " — " << registry.find_kind(name)->summary << "\n";
  };
  if (parsed.positionals.empty()) {
    std::cout << "stage types:\n";
    for (const auto& type : registry.types()) std::cout << "  " << type << " — " << registry.find(type)->summary << "\n";
    std::cout << "\npacket kinds:\n";
    list_kinds();
    return 0;
  }
  if (parsed.positionals.size() == 1 && parsed.positionals[0] == "kinds") {
    list_kinds();
    return 0;
  }
  const bool kind_only = parsed.positionals.size() == 2 && parsed.positionals[0] == "kind";
  const std::string name = kind_only ? parsed.positionals[1] : single_positional(parsed, "stage type or packet kind");
  if (const StageContract* contract = kind_only ? nullptr : registry.find(name)) {
    std::cout << describe_stage(*contract);
    return 0;
  }
  if (const PacketKind* kind = registry.find_kind(name)) {
    std::cout << describe_kind(*kind);
    return 0;
  }
  auto names = registry.kind_names();
  if (!kind_only)
    for (const auto& type : registry.types()) names.push_back(type);
  std::cerr << "error: unknown " << (kind_only ? "packet kind" : "stage type or packet kind") << " '" << name << "'"
            << detail::did_you_mean(name, names) << "; `flowrun describe` lists them\n";
  return kInvalid;
}

int command_graph(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun graph GRAPH (--dot | --expand) [--set STAGE.PARAM=VALUE]...\n\n"
                 "--dot     prints the validated graph in Graphviz dot format (pipe into `dot -Tsvg`).\n"
                 "--expand  prints the graph with every [template.*] expanded into its stages, as TOML that\n"
                 "          validates to the same graph (the parameters as written, paths resolved).\n";
    return 0;
  }
  const auto parsed = parse_args(args, {{"--dot"}, {"--expand"}, {"--set", true, true}});
  const std::string file = single_positional(parsed, "graph file");
  if (parsed.has("--dot") == parsed.has("--expand")) throw UsageError("flowrun graph needs one output format: --dot or --expand");
  PluginLoader loader;
  GraphLoad load;
  if (!load_graph_reporting(file, parsed, loader, load)) return kInvalid;
  std::cout << (parsed.has("--dot") ? graph_to_dot(load.spec) : expanded_graph_toml(load.spec));
  return 0;
}

int command_trace(const std::vector<std::string>& args) {
  if (wants_help(args) || args.empty()) {
    std::cout << "usage: flowrun trace summary FILE\n\nSummarises a trace written by `flowrun run --trace FILE`: per\n"
                 "stage calls, busy time, utilisation, mean and p95 latency, items per second, and the bottleneck.\n";
    return args.empty() ? kInvalid : 0;
  }
  const auto parsed = parse_args(args, {});
  if (parsed.positionals.size() != 2 || parsed.positionals[0] != "summary")
    throw UsageError("usage: flowrun trace summary FILE");
  std::cout << format_trace_summary(summarize_trace(parsed.positionals[1]));
  return 0;
}

}  // namespace histoflow::cli
