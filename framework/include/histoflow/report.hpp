#pragma once
// The HTML report of a run folder: RUN_DIR/report.html, one self-contained file (figures as inline SVG, images
// as data: URIs, no scripts, fonts or network) made from the run's own outputs: the graph, the run summary,
// the comparison tables, ROC curves, confusion matrices, per-fold metrics, attention heatmaps, finetuning
// curves and the tracer's utilisation. A failed or partial run still gets a report: it says what is missing.
// `flowrun report RUN_DIR` writes it; so does a run with `[run] report = true` or `flowrun run --report`.
#include <filesystem>
#include <string>
#include <vector>

namespace histoflow {

struct ReportOutcome {
  std::filesystem::path file;        // RUN_DIR/report.html
  std::vector<std::string> missing;  // what the report could not show, and why (also in the page)
};

// Throws std::runtime_error when `run_folder` is not a folder or holds nothing a run writes.
ReportOutcome write_report(const std::filesystem::path& run_folder);

}  // namespace histoflow
