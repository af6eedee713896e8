// Patch-level (knn_eval, linear_probe) results: each encoder's metrics per method and its confusion matrices.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "histoflow/svg_plot.hpp"
#include "report_parts.hpp"

namespace histoflow::report {
namespace {

namespace fs = std::filesystem;

std::string confusion_from_csv(const CsvTable& table, const std::string& title) {
  svg::ConfusionMatrix matrix{title, {table.header.begin() + 1, table.header.end()}, {}};
  for (const auto& r : table.records) {
    matrix.counts.emplace_back();
    for (std::size_t c = 1; c < r.fields.size(); ++c) {
      const double count = parse_number(r.fields[c]);
      if (!(count >= 0 && count < 9e15) || count != std::floor(count))
        throw std::invalid_argument("line " + std::to_string(r.line) + ": '" + r.fields[c] + "' is not a count");
      matrix.counts.back().push_back(static_cast<std::int64_t>(count));
    }
  }
  return svg::confusion_matrix(matrix);
}


}  // namespace

std::string patch_level_section(RunFolder& run) {
  std::vector<const GraphStage*> stages = run.stages_using("knn_eval");
  for (const auto* s : run.stages_using("linear_probe")) stages.push_back(s);
  if (stages.empty()) return "";
  std::ostringstream out;
  out << "<section id=\"patch-level\"><h2>Patch level (k-NN, linear probe)</h2>\n";
  for (const auto* stage : stages) {
    const fs::path folder = run.dir / stage->id;
    out << "<h3>" << html_escape(stage->id) << " <span class=\"note\">(" << html_escape(stage->use) << ")</span></h3>\n";
    std::vector<fs::path> encoders;
    if (fs::is_directory(folder))
      for (const auto& entry : fs::directory_iterator(folder))
        if (fs::exists(entry.path() / "metrics.json")) encoders.push_back(entry.path());
    std::sort(encoders.begin(), encoders.end());
    if (encoders.empty()) {
      run.missing.push_back(run.relative(folder) + ": no <encoder>/metrics.json, so no patch-level results of stage '" + stage->id + "'");
      continue;
    }
    std::ostringstream figures;
    out << "<table><tr><th>encoder</th><th>method</th><th class=\"num\">accuracy</th><th class=\"num\">balanced accuracy</th>"
           "<th class=\"num\">macro F1</th></tr>\n";
    for (const auto& encoder_folder : encoders) {
      const auto metrics = run.json(encoder_folder / "metrics.json", "patch metrics");
      if (!metrics) continue;
      const std::string encoder = json_text(*metrics, "encoder", encoder_folder.filename().string());
      const nlohmann::json& methods = json_member(*metrics, "methods");
      if (!methods.is_object()) {
        run.missing.push_back(run.relative(encoder_folder / "metrics.json") + ": no \"methods\" object, so no patch-level results");
        continue;
      }
      for (const auto& [method, m] : methods.items()) {
        out << "<tr><td>" << html_escape(encoder) << "</td><td>" << html_escape(method) << "</td><td class=\"num\">"
            << json_number(m, "accuracy", 3) << "</td><td class=\"num\">" << json_number(m, "balanced_accuracy", 3)
            << "</td><td class=\"num\">" << json_number(m, "macro_f1", 3) << "</td></tr>\n";
        const std::string csv = json_text(json_member(m, "confusion_matrix"), "csv");
        if (csv.empty()) continue;
        if (const auto table = run.csv(encoder_folder / csv, "confusion matrix"); table && table->header.size() > 1) {
          try {
            figures << figure(confusion_from_csv(*table, "Confusion: " + method + " on " + encoder));
          } catch (const std::exception& e) {
            run.missing.push_back(run.relative(encoder_folder / csv) + ": " + e.what());
          }
        }
      }
    }
    out << "</table>\n<div class=\"figures\">\n" << figures.str() << "</div>\n";
  }
  return out.str() + "</section>\n";
}


}  // namespace histoflow::report
