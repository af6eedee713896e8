// report.html: the page around the sections, the run summary and the graph drawing. One file, no scripts:
// figures are inline SVG, images data: URIs, the style sheet inline (screen and print).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <sstream>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"
#include "histoflow/report.hpp"
#include "histoflow/svg_plot.hpp"
#include "report_parts.hpp"

namespace histoflow::report {
namespace {

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; font-size: 14px; color: #1b1b1b; margin: 0 auto;
       max-width: 1280px; padding: 16px 24px 48px; line-height: 1.4; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 2px solid #1f77b4; }
h3 { font-size: 16px; margin-top: 22px; } nav a { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #c8c8c8; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f7; } td.num, th.num { text-align: right; }
td.best { font-weight: bold; background: #e3f1de; }
.status { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: bold; }
.status.completed { background: #dff0d8; } .status.completed_with_errors { background: #fcf3cf; }
.status.failed, .status.cancelled, .status.unfinished { background: #f8d7da; }
.missing { background: #fff6e5; border-left: 4px solid #f0a020; padding: 6px 12px; }
figure { display: inline-block; margin: 6px 12px 12px 0; vertical-align: top; }
figure svg, figure img, img { max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #555; max-width: 640px; }
.figures { display: flex; flex-wrap: wrap; align-items: flex-start; }
.note { color: #555; font-size: 12px; } .wide { overflow-x: auto; }
td.num { white-space: nowrap; } code { background: #f3f3f3; padding: 0 3px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; } nav { display: none; } .wide { overflow: visible; }
  figure, table, .missing { break-inside: avoid; } h2 { break-after: avoid; }
}
)";

std::string status_of(const RunFolder& run) {
  if (!run.summary || run.summary_is_stale) return "unfinished";
  return json_text(*run.summary, "status", "unfinished");
}

std::string status_words(const std::string& status) {
  if (status == "completed") return "completed";
  if (status == "completed_with_errors") return "completed with errors";
  if (status == "failed") return "failed";
  if (status == "cancelled") return "cancelled (stopped before the end)";
  return "did not finish (no run_summary.json)";
}

std::string shard_table(RunFolder& run) {
  const auto shards = run.dir / "shards";
  if (!std::filesystem::is_directory(shards)) return "";
  std::ostringstream out;
  out << "<h3>Shards</h3>\n<table><tr><th>shard</th><th>status</th><th class=\"num\">items</th><th class=\"num\">errors</th></tr>\n";
  std::vector<std::filesystem::path> folders;
  for (const auto& entry : std::filesystem::directory_iterator(shards))
    if (entry.is_directory()) folders.push_back(entry.path());
  std::sort(folders.begin(), folders.end());
  for (const auto& folder : folders) {
    out << "<tr><td>" << html_escape(folder.filename().string()) << "</td>";
    if (std::filesystem::exists(folder / "run_summary.json")) {
      const auto summary = run.json(folder / "run_summary.json", "shard summary");
      const nlohmann::json none;
      const auto& errors = json_member(summary ? *summary : none, "errors");
      out << "<td>" << html_escape(summary ? status_words(json_text(*summary, "status")) : "unreadable summary") << "</td><td class=\"num\">"
          << json_number(summary ? *summary : none, "items_retired", 0) << "</td><td class=\"num\">"
          << (errors.is_array() ? std::to_string(errors.size()) : "–") << "</td></tr>\n";
    } else {
      out << "<td>did not finish (no run_summary.json)</td><td class=\"num\">–</td><td class=\"num\">–</td></tr>\n";
    }
  }
  return out.str() + "</table>\n";
}

}  // namespace

std::string summary_section(RunFolder& run) {
  std::ostringstream out;
  out << "<section id=\"summary\"><h2>Run summary</h2>\n";
  if (!run.summary) {
    out << "<p class=\"missing\">This run did not finish: <code>run_summary.json</code> is missing";
    if (run.started)
      out << " (it started as process " << html_escape(json_member(*run.started, "pid").dump()) << " on "
          << html_escape(json_text(*run.started, "host", "?")) << ")";
    out << ". What it finished is shown below; what it did not is listed under <a href=\"#missing\">What is missing</a>.</p>\n";
    out << shard_table(run) << "</section>\n";
    return out.str();
  }
  const auto& s = *run.summary;
  const auto list = [&](const char* key) { return json_member(s, key).is_array() ? json_member(s, key) : nlohmann::json::array(); };
  const auto errors = list("errors"), warnings = list("warnings"), stages = list("stages"), results = list("results");
  if (run.summary_is_stale)
    out << "<p class=\"missing\">The latest run started after this summary was written and did not finish (its "
           "<code>resolved_graph.toml</code> is newer): the summary below is an earlier run's.</p>\n";
  out << "<table>\n<tr><th>experiment</th><td>" << html_escape(json_text(s, "experiment")) << "</td></tr>\n"
      << "<tr><th>graph</th><td><code>" << html_escape(json_text(s, "graph")) << "</code></td></tr>\n"
      << "<tr><th>status</th><td><span class=\"status " << html_escape(status_of(run)) << "\">" << html_escape(status_words(status_of(run)))
      << "</span></td></tr>\n"
      << "<tr><th>wall time</th><td>" << json_number(s, "wall_seconds", 1) << " s</td></tr>\n"
      << "<tr><th>items</th><td>" << json_number(s, "items_generated", 0) << " generated, " << json_number(s, "items_retired", 0)
      << " finished, " << errors.size() << " errors, " << warnings.size() << " warnings</td></tr>\n"
      << "<tr><th>peak memory</th><td>" << json_number(s, "peak_rss_mb", 0) << " MiB resident</td></tr>\n"
      << "<tr><th>in flight</th><td>peak " << json_number(s, "peak_in_flight", 0) << " items (limit " << json_number(s, "max_in_flight", 0)
      << "), peak " << json_number(s, "peak_tiles_in_flight", 0) << " tiles (limit " << json_number(s, "max_tiles_in_flight", 0)
      << ")</td></tr>\n<tr><th>histoflow</th><td>" << html_escape(json_text(s, "histoflow_version")) << "</td></tr>\n</table>\n";
  if (!json_text(s, "fatal").empty()) out << "<p class=\"missing\">The run failed: " << html_escape(json_text(s, "fatal")) << "</p>\n";
  if (!json_member(s, "input_ended_early").is_null())
    out << "<p class=\"missing\">Input ended early: " << html_escape(json_member(s, "input_ended_early").dump()) << "</p>\n";
  const auto messages = [&](const nlohmann::json& list, const char* title) {
    if (list.empty()) return;
    out << "<h3>" << title << " (" << list.size() << ")</h3>\n<table><tr><th>stage</th><th>item (slide)</th><th>message</th></tr>\n";
    for (const auto& e : list)
      out << "<tr><td>" << html_escape(json_text(e, "stage")) << "</td><td>" << html_escape(json_text(e, "item")) << "</td><td>"
          << html_escape(json_text(e, "message")) << "</td></tr>\n";
    out << "</table>\n";
  };
  messages(errors, "Errors");
  if (errors.empty()) out << "<p>No errors.</p>\n";
  messages(warnings, "Warnings");
  out << "<h3>Stages</h3>\n<table><tr><th>stage</th><th>type</th><th class=\"num\">calls</th><th class=\"num\">errors</th>"
         "<th class=\"num\">resumed (restored)</th><th class=\"num\">skipped</th><th class=\"num\">left to other processes</th>"
         "<th class=\"num\">busy s</th><th class=\"num\">start-up s</th></tr>\n";
  double restored = 0;
  for (const auto& stage : stages) {
    std::string use;
    for (const auto& g : run.stages)
      if (g.id == json_text(stage, "id")) use = g.use;
    if (json_member(stage, "restored").is_number()) restored += json_member(stage, "restored").get<double>();
    out << "<tr><td>" << html_escape(json_text(stage, "id")) << "</td><td>" << html_escape(use) << "</td>";
    for (const char* key : {"calls", "errors", "restored", "skipped", "left_to_others"})
      out << "<td class=\"num\">" << json_number(stage, key, 0) << "</td>";
    out << "<td class=\"num\">" << json_number(stage, "busy_seconds", 2) << "</td><td class=\"num\">"
        << json_number(stage, "open_seconds", 2) << "</td></tr>\n";
  }
  out << "</table>\n<p class=\"note\">" << svg::fixed(restored, 0)
      << " finished items were restored from an earlier run instead of being computed again (resumed).</p>\n";
  if (!results.empty()) {
    out << "<h3>Result files</h3>\n<ul>\n";
    for (const auto& r : results)
      out << "<li>" << html_escape(json_text(r, "stage")) << ": " << html_escape(json_text(r, "what")) << ": <code>"
          << html_escape(run.relative(json_text(r, "path"))) << "</code></li>\n";
    out << "</ul>\n";
  }
  out << shard_table(run) << "</section>\n";
  return out.str();
}

std::string graph_section(RunFolder& run) {
  if (run.stages.empty()) return "";
  return "<section id=\"graph\"><h2>Graph</h2>\n" +
         figure(draw_graph(run.stages), "Stages left to right by their distance from a source; each box: stage id and type. "
                                        "Solid arrows carry data; dashed arrows wait for a stage to finish (phases).") +
         "</section>\n";
}

}  // namespace histoflow::report

namespace histoflow {

ReportOutcome write_report(const std::filesystem::path& run_folder) {
  if (!std::filesystem::is_directory(run_folder)) throw std::runtime_error("'" + run_folder.string() + "' is not a folder");
  if (!std::filesystem::exists(run_folder / "run_summary.json") && !std::filesystem::exists(run_folder / "resolved_graph.toml") &&
      !std::filesystem::exists(run_folder / "run_started.json") && !std::filesystem::exists(run_folder / "shards"))
    throw std::runtime_error("'" + run_folder.string() +
                             "' is not a run folder: it has none of run_summary.json, resolved_graph.toml, run_started.json "
                             "or shards/ (give the experiment's output folder)");
  report::RunFolder run = report::read_run_folder(run_folder);
  std::string title = run.summary ? report::json_text(*run.summary, "experiment") : "";
  const auto folder = std::filesystem::absolute(run_folder).lexically_normal();
  if (title.empty()) title = (folder.has_filename() ? folder : folder.parent_path()).filename().string();  // "runs/x/" too
  // Sections first: each one notes what it could not find. A file of an unexpected shape costs its section,
  // not the report.
  std::string sections;
  const auto add = [&](const char* name, std::string (*section)(report::RunFolder&)) {
    try {
      sections += section(run);
    } catch (const std::exception& e) {
      run.missing.push_back(std::string("the ") + name + " section: not drawn: " + e.what());
    }
  };
  add("run summary", report::summary_section);
  add("graph", report::graph_section);
  add("comparison", report::comparison_section);
  add("slide-level", report::slide_level_section);
  add("patch-level", report::patch_level_section);
  add("finetuning", report::finetune_section);
  add("timing", report::timing_section);
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       << "<title>" << report::html_escape(title) << " · histoflow report</title>\n<style>" << report::kStyle << "</style></head>\n<body>\n"
       << "<h1>" << report::html_escape(title) << "</h1>\n<p class=\"note\">Run folder <code>"
       << report::html_escape(std::filesystem::absolute(run_folder).lexically_normal().string()) << "</code>; report written " << stamp
       << " by <code>flowrun report</code>.</p>\n"
       << "<nav><a href=\"#summary\">Summary</a><a href=\"#graph\">Graph</a><a href=\"#comparison\">Comparison</a>"
       << "<a href=\"#slide-level\">Slide level</a><a href=\"#patch-level\">Patch level</a><a href=\"#finetuning\">Finetuning</a>"
       << "<a href=\"#timing\">Where the time went</a><a href=\"#missing\">What is missing</a></nav>\n"
       << sections << "<section id=\"missing\"><h2>What is missing</h2>\n";
  if (run.missing.empty()) {
    page << "<p>Nothing: every output this report looks for was found.</p>\n";
  } else {
    page << "<ul class=\"missing\">\n";
    for (const auto& m : run.missing) page << "<li>" << report::html_escape(m) << "</li>\n";
    page << "</ul>\n";
  }
  page << "</section>\n</body></html>\n";
  const auto file = run_folder / "report.html";
  write_file_atomically(file, page.str());
  return {file, run.missing};
}

}  // namespace histoflow
