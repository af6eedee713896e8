// The comparison tables: each comparison_table stage's CSV as one row per method, setting and metric and one
// column per encoder (and source stage), cells with the CSV's numbers (mean ± sd, [95% CI]) and the best value
// of each metric marked. The cells carry the CSV's text as data attributes, so a reader (or the Chromium test)
// can check them against the file.
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "histoflow/svg_plot.hpp"
#include "report_parts.hpp"

namespace histoflow::report {
namespace {

namespace fs = std::filesystem;

// A published number beside the run's (comparison_table's `reference`; evaluation_common::kReferenceSource): shown,
// never this run's best.
bool is_reference(const std::pair<std::string, std::string>& encoder_and_source) { return encoder_and_source.second == "reference"; }

std::string comparison_table(RunFolder& run, const fs::path& file, const std::string& stage_id) {
  const auto table = run.csv(file, "comparison table of stage '" + stage_id + "'");
  if (!table) return "";
  if (!has_columns(*table, {"encoder", "method", "setting", "metric", "mean", "sd", "ci_low", "ci_high"})) {
    run.missing.push_back(run.relative(file) + ": not a comparison table (columns encoder, method, setting, metric, mean, sd, ci_low, ci_high)");
    return "";
  }
  const CsvColumns field{*table};
  // A table column per (encoder, source): the same encoder scored by two stages stays two columns.
  using Source = std::pair<std::string, std::string>;  // encoder, source
  using Row = std::array<std::string, 3>;             // method, setting, metric
  std::vector<Source> sources;
  std::vector<Row> rows;
  std::map<std::pair<Source, Row>, const CsvRecord*> cells;
  std::map<std::string, int> sources_per_encoder;
  for (const auto& r : table->records) {
    const Source source{field(r, "encoder"), field(r, "source")};
    const Row row{field(r, "method"), field(r, "setting"), field(r, "metric")};
    if (std::find(sources.begin(), sources.end(), source) == sources.end()) sources.push_back(source), ++sources_per_encoder[source.first];
    if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
    cells[{source, row}] = &r;
  }
  std::map<Row, double> best;
  for (const auto& [key, record] : cells) {
    if (is_reference(key.first)) continue;
    const double mean = parse_number(field(*record, "mean"));
    if (std::isnan(mean)) continue;
    auto [it, inserted] = best.emplace(key.second, mean);
    if (!inserted) it->second = std::max(it->second, mean);
  }
  // In-domain results first, then the rest in the CSV's order.
  std::stable_partition(rows.begin(), rows.end(), [](const Row& row) { return row[1] == "in-domain"; });
  // One row per metric (method, setting, metric) and one column per encoder: a table as wide as the encoders.
  std::ostringstream out;
  out << "<h3>" << html_escape(run.relative(file)) << " <span class=\"note\">(stage " << html_escape(stage_id) << ")</span></h3>\n"
      << "<div class=\"wide\"><table class=\"comparison\" data-csv=\"" << html_escape(run.relative(file))
      << "\">\n<tr><th>method</th><th>setting</th><th>metric</th>";
  for (const auto& [encoder, source] : sources)
    out << "<th>" << html_escape(sources_per_encoder[encoder] > 1 ? encoder + " (" + source + ")" : encoder) << "</th>";
  out << "</tr>\n";
  for (const auto& row : rows) {
    out << "<tr><td>" << html_escape(row[0]) << "</td><td>" << html_escape(row[1]) << "</td><th>" << html_escape(row[2]) << "</th>";
    for (const auto& source : sources) {
      const auto it = cells.find({source, row});
      if (it == cells.end()) {
        out << "<td>–</td>";
        continue;
      }
      const CsvRecord& r = *it->second;
      const double mean = parse_number(field(r, "mean"));
      const bool is_best = !is_reference(source) && !std::isnan(mean) && best.count(row) && mean == best.at(row);
      out << "<td class=\"num" << (is_best ? " best" : "") << "\" data-encoder=\"" << html_escape(source.first) << "\" data-source=\""
          << html_escape(source.second) << "\" data-method=\"" << html_escape(row[0]) << "\" data-setting=\"" << html_escape(row[1])
          << "\" data-metric=\"" << html_escape(row[2]) << "\"";
      // The CSV's text, exactly: the numbers a reader checks against comparison.csv. An empty field: no attribute.
      for (const auto& [column, attribute] :
           {std::pair{"mean", "data-mean"}, {"sd", "data-sd"}, {"ci_low", "data-ci-low"}, {"ci_high", "data-ci-high"}})
        if (!field(r, column).empty()) out << ' ' << attribute << "=\"" << html_escape(field(r, column)) << "\"";
      out << ">" << (field(r, "mean").empty() ? "n/a" : svg::fixed(mean, 3));
      if (!field(r, "sd").empty()) out << " ± " << svg::fixed(parse_number(field(r, "sd")), 3);
      if (!field(r, "ci_low").empty() && !field(r, "ci_high").empty())
        out << " [" << svg::fixed(parse_number(field(r, "ci_low")), 3) << ", " << svg::fixed(parse_number(field(r, "ci_high")), 3) << "]";
      out << (is_best ? " ★" : "") << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table></div>\n<p class=\"note\">Cells: mean ± sd over folds, or value [95% bootstrap CI], or both. ★ and green: the "
         "best (highest) value of the row's metric across this run's encoders (a column \"(reference)\" holds published numbers).</p>\n";
  return out.str();
}


}  // namespace

std::string comparison_section(RunFolder& run) {
  std::vector<std::pair<fs::path, std::string>> files;
  for (const auto* stage : run.stages_using("comparison_table")) {
    const std::string name = stage->parameters.value("csv", "");
    if (!name.empty()) files.emplace_back(run.dir / name, stage->id);
  }
  if (run.stages.empty() && fs::is_directory(run.dir))  // no graph: every comparison CSV at the top
    for (const auto& entry : fs::directory_iterator(run.dir))
      if (entry.path().extension() == ".csv") {
        std::ifstream in(entry.path());
        std::string header;
        std::getline(in, header);
        if (header.rfind("encoder,method,setting,metric,mean", 0) == 0) files.emplace_back(entry.path(), "?");
      }
  std::sort(files.begin(), files.end());
  if (files.empty()) return "";
  std::string out = "<section id=\"comparison\"><h2>Comparison</h2>\n";
  for (const auto& [file, stage] : files) out += comparison_table(run, file, stage);
  return out + "</section>\n";
}


}  // namespace histoflow::report
