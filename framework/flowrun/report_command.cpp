// flowrun report RUN_DIR: the run folder's results as one self-contained HTML page (histoflow/report.hpp).
#include <iostream>

#include "commands.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/report.hpp"

namespace histoflow::cli {

bool print_report(const std::filesystem::path& run_folder, std::ostream& out) {
  try {
    const ReportOutcome outcome = write_report(run_folder);
    out << "report: " << std::filesystem::absolute(outcome.file).lexically_normal().string() << "\n";
    if (!outcome.missing.empty()) {
      out << "report: " << outcome.missing.size() << " thing(s) missing, listed in the page:\n";
      for (const auto& m : outcome.missing) out << "  " << m << "\n";
    }
    return true;
  } catch (const std::exception& e) {
    std::cerr << "report: not written: " << e.what() << "\n";
    return false;
  }
}

int command_report(const std::vector<std::string>& args) {
  if (wants_help(args)) {
    std::cout << "usage: flowrun report RUN_DIR\n\n"
                 "Writes RUN_DIR/report.html (RUN_DIR: a graph's [experiment] output folder): one file that opens\n"
                 "offline, with the graph, the run summary (items, errors and their slides, resumed items, peak\n"
                 "memory), the comparison tables (CIs, the best value of each metric marked), ROC curves per encoder overlaid,\n"
                 "confusion matrices, per-fold metrics, attention heatmaps with the most attended tiles for a few\n"
                 "slides per class, finetuning curves, and the tracer's utilisation and timeline (from RUN_DIR/trace*.json).\n"
                 "A failed or partial run gets a report too; it lists what is missing. docs/report.md.\n"
                 "Exit status: 0 written, 1 not a run folder or not written, 2 usage.\n";
    return 0;
  }
  if (args.size() != 1 || args[0].rfind("--", 0) == 0) throw UsageError("expected exactly one RUN_DIR (see --help)");
  return print_report(args[0], std::cout) ? 0 : 1;
}

}  // namespace histoflow::cli
