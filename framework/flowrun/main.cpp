// flowrun: validate, run and inspect histoflow graphs.
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "histoflow/cpu_kernels.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/malloc_thresholds.hpp"
#include "histoflow/sanitizer_options.hpp"
#include "histoflow/version.hpp"

namespace {

void print_usage() {
  std::cout << "usage: flowrun COMMAND [ARGS]\n\n"
               "commands:\n"
               "  run GRAPH        validate and run an experiment graph\n"
               "  validate GRAPH   check a graph and report every problem with file:line:column\n"
               "  plugins          list plugin libraries, their stage types and backbones\n"
               "  describe [STAGE] show a stage's ports, parameters and an example (no STAGE: list all)\n"
               "  backbones        list torch_encoder's backbones: family, width, input size, outputs, plugin\n"
               "  describe backbone NAME  everything about one backbone (weights accepted, plugin file)\n"
               "  graph GRAPH --dot  print the graph in Graphviz format (--expand: with its templates expanded)\n"
               "  trace summary FILE per-stage summary of a trace file\n"
               "  cache ls|verify|gc FOLDER  list, check or tidy cached feature files and grids\n"
               "  submit GRAPH --slurm  run GRAPH on a Slurm cluster: sharded extraction, then the evaluation\n"
               "  status DIR       how a scaled-out experiment stands: shards, failed items, the evaluation\n"
               "  report RUN_DIR   write RUN_DIR/report.html: one self-contained page of the run's results\n\n"
               "options: --help (on every command), --version, --plugins DIR (repeatable, before or after COMMAND):\n"
               "         a plugin folder searched after flowrun's own and HISTOFLOW_PLUGIN_PATH's\n"
               "environment: HISTOFLOW_PLUGIN_PATH  extra plugin folders, ':'-separated\n"
               "             HISTOFLOW_CPU_KERNELS=default  leave LibTorch on its own CPU kernels (else AVX-512 where\n"
               "             the CPU has it and ATEN_CPU_CAPABILITY is unset)\n";
}

}  // namespace

int main(int argc, char** argv) {
  histoflow::hold_malloc_thresholds();   // before anything is allocated and freed
  histoflow::use_widest_cpu_kernels();  // before any plugin runs a LibTorch kernel
  std::vector<std::string> args(argv + 1, argv + argc);
  // --plugins DIR, before or after the command word: more plugin folders, searched after the others.
  for (auto it = args.begin(); it != args.end();) {
    if (*it != "--plugins") {
      ++it;
      continue;
    }
    if (it + 1 == args.end()) {
      std::cerr << "flowrun: --plugins needs a folder\n";
      return 2;
    }
    histoflow::cli::plugin_folders_from_command_line().push_back(*(it + 1));
    it = args.erase(it, it + 2);
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "flowrun (histoflow) " << histoflow::kVersion << "\n";
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    using namespace histoflow::cli;
    if (command == "run") return command_run(args);
    if (command == "validate") return command_validate(args);
    if (command == "plugins") return command_plugins(args);
    if (command == "describe") return command_describe(args);
    if (command == "graph") return command_graph(args);
    if (command == "trace") return command_trace(args);
    if (command == "cache") return command_cache(args);
    if (command == "backbones") return command_backbones(args);
    if (command == "submit") return command_submit(args);
    if (command == "status") return command_status(args);
    if (command == "report") return command_report(args);
    std::cerr << "flowrun: unknown command '" << command << "'\n";
    print_usage();
    return 2;
  } catch (const histoflow::UsageError& e) {
    std::cerr << "flowrun " << command << ": " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "flowrun " << command << ": error: " << e.what() << '\n';
    return 1;
  }
}
