// comparison_table: collects "evaluation" packets from any number of stages and, at end of stream, writes
// one table comparing the encoders (comparison.md, comparison.csv) and prints it.
#include <iostream>
#include <mutex>

#include "histoflow/atomic_file.hpp"
#include "histoflow/evaluation_common/comparison_table.hpp"
#include "histoflow/evaluation_common/evaluation_kind.hpp"
#include "histoflow/evaluation_common/reference_table.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/stage.hpp"

namespace histoflow::comparison {
namespace {

class ComparisonTableStage final : public Stage {
 public:
  explicit ComparisonTableStage(const StageContext& context)
      : directory_(context.experiment.output_dir),
        markdown_(context.params.get_string("markdown")),
        csv_(context.params.get_string("csv")),
        digits_(static_cast<int>(context.params.get_int("digits"))),
        print_(context.params.get_bool("print")) {
    // Read before the run starts: a damaged reference table fails the graph, not its end.
    if (context.params.has("reference")) reference_ = evaluation_common::read_reference_table(context.params.get_string("reference"));
  }

  void process(const PacketPtr& input, std::size_t, Emitter&) override { records_.push_back(evaluation_common::evaluation_record_of(*input)); }

  void flush(Emitter&) override {
    // The reference's rows sit beside the run's ("<encoder> (reference)", source "reference").
    auto shown = records_;
    const auto reference_rows = evaluation_common::reference_records(reference_, records_);
    shown.insert(shown.end(), reference_rows.begin(), reference_rows.end());
    const auto table = evaluation_common::build_comparison_table(shown, digits_);
    std::string markdown = evaluation_common::comparison_markdown(table);
    if (!reference_.empty()) {
      const auto differences = evaluation_common::compare_with_reference(records_, reference_);
      markdown += "\n## Against the reference\n\n";
      markdown += differences.empty() ? std::string("No result of this run has a reference value (same encoder, method, setting and metric).\n")
                                      : evaluation_common::reference_markdown(differences, digits_);
      write_file_atomically(directory_ / reference_csv_name(), evaluation_common::reference_csv(differences));
    }
    write_file_atomically(directory_ / markdown_, "# Encoder comparison\n\n" + markdown +
                                                      "\nCells: mean ± sd over folds, or value [95% bootstrap CI].\n");
    write_file_atomically(directory_ / csv_, evaluation_common::comparison_csv(shown));
    results_ = {{"comparison table", std::filesystem::absolute(directory_ / markdown_)},
                {"comparison table (CSV)", std::filesystem::absolute(directory_ / csv_)}};
    if (!reference_.empty()) results_.push_back({"against the reference (CSV)", std::filesystem::absolute(directory_ / reference_csv_name())});
    if (print_) std::cout << "\nEncoder comparison (" << (directory_ / markdown_).string() << ")\n" << markdown << std::flush;
  }

  std::vector<StageResult> results() const override { return results_; }

 private:
  // comparison.csv -> comparison_vs_reference.csv, beside it.
  std::filesystem::path reference_csv_name() const {
    const std::filesystem::path csv(csv_);
    return csv.parent_path() / (csv.stem().string() + "_vs_reference.csv");
  }

  std::filesystem::path directory_;
  std::string markdown_, csv_;
  int digits_;
  bool print_;
  std::vector<evaluation_common::EvaluationRecord> records_;
  std::vector<evaluation_common::ReferenceValue> reference_;  // empty without `reference`
  std::vector<StageResult> results_;  // once written
};

}  // namespace

void register_comparison_table(Registry& registry) {
  StageContract c;
  c.type = "comparison_table";
  c.summary = "Compares encoders: one table (rows: encoder; columns: method · setting · metric) from evaluation results";
  c.doc = "Fan-in from any number of evaluation stages (mil_cv, knn_eval, linear_probe, ...). At end of stream it\n"
          "writes the table as Markdown and a long-format CSV (encoder, method, setting, metric, mean, sd, ci_low,\n"
          "ci_high, source) into the experiment output folder and prints it. Cells read \"mean ± sd\" where a\n"
          "standard deviation over folds exists, else \"value [ci_low, ci_high]\" or the value. Any metric set works.\n"
          "reference: a CSV of published numbers (encoder, method, setting, metric, value, source; e.g.\n"
          "graphs/study/reference/paper_results.csv). Its values for the table's columns appear as rows \"<encoder>\n"
          "(reference)\" (in the CSV with source \"reference\"), and a section \"Against the reference\" lists every result of the run with a reference value\n"
          "for the same encoder, method, setting and metric: run, reference, difference (also <csv stem>_vs_reference.csv).";
  c.inputs = {{"evaluations", evaluation_common::kEvaluationKind, "evaluation results: encoder, method, setting, mean:<metric>, ..."}};
  c.params = {param_string("markdown", "comparison.md", "Markdown file, relative to the experiment output folder"),
              param_string("csv", "comparison.csv", "CSV file (long format), relative to the experiment output folder"),
              param_int("digits", 3, "Decimals shown in the table", 1, 8),
              param_bool("print", true, "Print the table to standard output at the end of the run"),
              param_path("reference", "Reference results to show beside the run's and compare with (CSV: encoder, method, "
                                      "setting, metric, value, source)")};
  c.rules = {rule_file_exists("reference")};
  c.example = "[stage.compare]\nuse = \"comparison_table\"\ninputs = [\"mil_resnet\", \"mil_dinov2\"]\n";
  c.needs_every_item = true;  // a table over every run
  register_stage<ComparisonTableStage>(registry, std::move(c));
}

}  // namespace histoflow::comparison
