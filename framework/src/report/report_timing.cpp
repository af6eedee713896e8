// Where the time went: for each trace file in the run folder (flowrun run --trace; a phased graph writes one
// per phase), each stage's utilisation as a bar chart and its busy spans as a timeline.
#include <algorithm>
#include <sstream>

#include "histoflow/svg_plot.hpp"
#include "histoflow/tracer.hpp"
#include "report_parts.hpp"

namespace histoflow::report {

std::string timing_section(RunFolder& run) {
  std::vector<std::filesystem::path> traces;
  if (std::filesystem::is_directory(run.dir))
    for (const auto& entry : std::filesystem::directory_iterator(run.dir)) {
      const auto name = entry.path().filename().string();
      if (entry.path().extension() == ".json" && name.rfind("trace", 0) == 0) traces.push_back(entry.path());
    }
  std::sort(traces.begin(), traces.end());
  std::ostringstream out;
  out << "<section id=\"timing\"><h2>Where the time went</h2>\n";
  if (traces.empty()) {
    run.missing.push_back("trace.json: no trace in the run folder, so no utilisation chart or timeline (run with "
                          "--trace " + run.relative(run.dir / "trace.json") + ")");
    return out.str() + "<p>No trace file.</p></section>\n";
  }
  for (const auto& file : traces) {
    TraceSummary summary;
    try {
      summary = summarize_trace(file);
    } catch (const std::exception& e) {
      run.missing.push_back(run.relative(file) + ": " + e.what());
      continue;
    }
    svg::BarChart bars;
    bars.title = "Utilisation per stage (" + run.relative(file) + ")";
    bars.value_label = "utilisation: busy time / (wall time x the stage's concurrency), %";
    bars.max = 100;
    svg::Timeline timeline;
    timeline.title = "Busy spans per stage (" + run.relative(file) + ")";
    timeline.x_label = "seconds since the run started";
    timeline.end = summary.wall_seconds;
    for (const auto& s : summary.stages) {
      bars.bars.push_back({s.id, 100 * s.utilisation, svg::fixed(100 * s.utilisation, 0) + "% · " + svg::fixed(s.busy_seconds, 2) + " s busy"});
      timeline.rows.push_back({s.id, s.busy_spans});
      timeline.end = std::max(timeline.end, s.busy_spans.empty() ? 0.0 : s.busy_spans.back().second);
    }
    out << "<h3>" << html_escape(run.relative(file)) << "</h3>\n<p>Wall time " << svg::fixed(summary.wall_seconds, 2) << " s"
        << (summary.bottleneck.empty() ? "" : "; bottleneck: <b>" + html_escape(summary.bottleneck) +
                                                  "</b> (the highest utilisation of its available concurrency)")
        << ".</p>\n"
        << figure(svg::bar_chart(bars)) << figure(svg::timeline(timeline), "Start-up (model loading), item calls and flushes.");
  }
  return out.str() + "</section>\n";
}

}  // namespace histoflow::report
