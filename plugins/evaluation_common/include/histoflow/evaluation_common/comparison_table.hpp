#pragma once
// The benchmark's comparison table: one row per encoder, one column per (method, setting, metric), cells
// "mean ± sd" where a standard deviation over folds exists, else "mean [ci_low, ci_high]" or the mean.
// Any metric set works: slide-level (auroc, balanced_accuracy, f1) and patch-level (accuracy, ...) records
// share one table.
#include <map>
#include <string>
#include <vector>

namespace histoflow::evaluation_common {

struct EvaluationRecord {
  std::string row;      // the encoder
  std::string method;   // e.g. "gated_attention", "knn"
  std::string setting;  // e.g. "in-domain", "external", "external (ensemble)", "test"
  std::map<std::string, double> mean, sd, ci_low, ci_high;  // by metric name
  std::string source;   // the stage that produced it (used to tell apart rows that would collide)
};

struct ComparisonTable {
  std::vector<std::string> rows;
  std::vector<std::string> columns;                       // "method · setting · metric"
  std::map<std::string, std::map<std::string, std::string>> cells;  // row -> column -> text
};

// Rows sorted by name; columns by method, then setting (in-domain, external, external (ensemble), test,
// others by name), then metric (auroc, balanced_accuracy, f1, accuracy, weighted_f1, others by name).
// Two records for the same row and column from different sources get the source appended to the row.
ComparisonTable build_comparison_table(const std::vector<EvaluationRecord>& records, int digits = 3);

std::string comparison_markdown(const ComparisonTable& table);
// Long format, one line per record and metric: row,method,setting,metric,mean,sd,ci_low,ci_high,source.
std::string comparison_csv(const std::vector<EvaluationRecord>& records);

// A number as the comparison CSVs write it: 10 significant digits.
std::string csv_number(double value);

// "0.912 ± 0.031", "0.912 [0.850, 0.970]" or "0.912".
std::string format_metric_cell(const EvaluationRecord& record, const std::string& metric, int digits = 3);

}  // namespace histoflow::evaluation_common
