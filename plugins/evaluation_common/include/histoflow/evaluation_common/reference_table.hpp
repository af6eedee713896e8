#pragma once
// Published numbers beside a run's own: a reference table (CSV: encoder, method, setting, metric, value, source),
// e.g. a paper's results, shown by comparison_table as rows "<encoder> (reference)" and compared cell by cell with
// the run's records that have the same encoder, method, setting and metric.
#include <filesystem>
#include <string>
#include <vector>

#include "histoflow/evaluation_common/comparison_table.hpp"

namespace histoflow::evaluation_common {

// The `source` of a reference row in comparison.csv; the HTML report (framework/src/report/report_comparison.cpp)
// knows it by this name and never marks such a value best.
inline constexpr const char* kReferenceSource = "reference";

struct ReferenceValue {
  std::string encoder, method, setting, metric;
  double value = 0;
  std::string source;  // where the number comes from (a citation)
  int line = 0;        // in the reference file
};

// Reads a reference table. Throws naming the file (and line) when a column is missing, a value is not a finite
// number, or one (encoder, method, setting, metric) appears twice.
std::vector<ReferenceValue> read_reference_table(const std::filesystem::path& file);

// The reference values of the run's columns (a method, setting and metric that one of `run` has) as comparison
// records: row "<encoder> (reference)", source "reference". A patch-level table shows no slide-level reference.
std::vector<EvaluationRecord> reference_records(const std::vector<ReferenceValue>& reference, const std::vector<EvaluationRecord>& run);

// A run's cell and the reference value for it.
struct ReferenceDifference {
  std::string encoder, method, setting, metric;
  double run = 0, reference = 0;
  std::string source;
  double difference() const { return run - reference; }
};

// Every (encoder, method, setting, metric) that both the run's records and the reference hold, in the
// reference's order.
std::vector<ReferenceDifference> compare_with_reference(const std::vector<EvaluationRecord>& records,
                                                        const std::vector<ReferenceValue>& reference);

// Markdown table (encoder, method · setting · metric, run, reference, difference with its sign, source) and the
// same as CSV (encoder,method,setting,metric,run,reference,difference,source).
std::string reference_markdown(const std::vector<ReferenceDifference>& differences, int digits = 3);
std::string reference_csv(const std::vector<ReferenceDifference>& differences);

}  // namespace histoflow::evaluation_common
