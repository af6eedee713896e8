// comparison_table: collects "evaluation" packets from any number of stages and, at end of stream, writes
// one table comparing the encoders (comparison.md, comparison.csv) and prints it.
#include <iostream>
#include <mutex>

#include "histoflow/atomic_file.hpp"
#include "histoflow/evaluation_common/comparison_table.hpp"
#include "histoflow/evaluation_common/evaluation_kind.hpp"
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
        print_(context.params.get_bool("print")) {}

  void process(const PacketPtr& input, std::size_t, Emitter&) override { records_.push_back(evaluation_common::evaluation_record_of(*input)); }

  void flush(Emitter&) override {
    const auto table = evaluation_common::build_comparison_table(records_, digits_);
    const std::string markdown = evaluation_common::comparison_markdown(table);
    write_file_atomically(directory_ / markdown_, "# Encoder comparison\n\n" + markdown +
                                                      "\nCells: mean ± sd over folds, or value [95% bootstrap CI].\n");
    write_file_atomically(directory_ / csv_, evaluation_common::comparison_csv(records_));
    results_ = {{"comparison table", std::filesystem::absolute(directory_ / markdown_)},
                {"comparison table (CSV)", std::filesystem::absolute(directory_ / csv_)}};
    if (print_) std::cout << "\nEncoder comparison (" << (directory_ / markdown_).string() << ")\n" << markdown << std::flush;
  }

  std::vector<StageResult> results() const override { return results_; }

 private:
  std::filesystem::path directory_;
  std::string markdown_, csv_;
  int digits_;
  bool print_;
  std::vector<evaluation_common::EvaluationRecord> records_;
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
          "standard deviation over folds exists, else \"value [ci_low, ci_high]\" or the value. Any metric set works.";
  c.inputs = {{"evaluations", evaluation_common::kEvaluationKind, "evaluation results: encoder, method, setting, mean:<metric>, ..."}};
  c.params = {param_string("markdown", "comparison.md", "Markdown file, relative to the experiment output folder"),
              param_string("csv", "comparison.csv", "CSV file (long format), relative to the experiment output folder"),
              param_int("digits", 3, "Decimals shown in the table", 1, 8),
              param_bool("print", true, "Print the table to standard output at the end of the run")};
  c.example = "[stage.compare]\nuse = \"comparison_table\"\ninputs = [\"mil_resnet\", \"mil_dinov2\"]\n";
  c.needs_every_item = true;  // a table over every run
  register_stage<ComparisonTableStage>(registry, std::move(c));
}

}  // namespace histoflow::comparison
