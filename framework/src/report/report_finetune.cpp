// Finetuning (dinov2_finetune) results: the teacher's accuracy against iteration and training time, drawn from
// evaluation_curve.csv by the function that draws the stage's evaluation_curve.png.
#include <sstream>

#include "histoflow/svg_plot.hpp"
#include "report_parts.hpp"

namespace histoflow::report {

std::string finetune_section(RunFolder& run) {
  const auto stages = run.stages_using("dinov2_finetune");
  if (stages.empty()) return "";
  std::ostringstream out;
  out << "<section id=\"finetuning\"><h2>Finetuning</h2>\n";
  for (const auto* stage : stages) {
    out << "<h3>" << html_escape(stage->id) << "</h3>\n";
    const auto table = run.csv(run.dir / stage->id / "evaluation_curve.csv", "finetuning curve of stage '" + stage->id + "'");
    if (!table || table->records.empty()) continue;
    const CsvColumns field{*table};
    svg::TrainingCurves curves;
    for (const auto& r : table->records) {
      curves.iteration.push_back(parse_number(field(r, "iteration")));
      curves.training_seconds.push_back(parse_number(field(r, "training_seconds")));
      curves.knn_accuracy.push_back(parse_number(field(r, "knn_balanced_accuracy")));
      curves.linear_accuracy.push_back(parse_number(field(r, "linear_probe_balanced_accuracy")));
    }
    const auto [by_iteration, by_time] = svg::training_curve_figures(curves);
    out << "<div class=\"figures\">\n" << figure(by_iteration)
        << figure(by_time, "Training time excludes the evaluations themselves.") << "</div>\n";
  }
  return out.str() + "</section>\n";
}


}  // namespace histoflow::report
