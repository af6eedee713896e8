#include "histoflow/evaluation_common/comparison_table.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>
#include <tuple>

#include "histoflow/csv.hpp"

namespace histoflow::evaluation_common {
namespace {

int rank_of(const std::vector<std::string>& known, const std::string& value) {
  const auto it = std::find(known.begin(), known.end(), value);
  return it == known.end() ? static_cast<int>(known.size()) : static_cast<int>(it - known.begin());
}

const std::vector<std::string> kSettingOrder = {"in-domain", "external", "external (ensemble)", "test"};
const std::vector<std::string> kMetricOrder = {"auroc", "balanced_accuracy", "f1", "accuracy", "weighted_f1"};

struct ColumnKey {
  std::string method, setting, metric;
  auto order() const {
    return std::make_tuple(method, rank_of(kSettingOrder, setting), setting, rank_of(kMetricOrder, metric), metric);
  }
  bool operator<(const ColumnKey& other) const { return order() < other.order(); }
  std::string text() const { return method + " · " + setting + " · " + metric; }
};

std::string fixed(double value, int digits) {
  if (std::isnan(value)) return "n/a";
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

std::string optional_number(const std::map<std::string, double>& values, const std::string& metric) {
  const auto it = values.find(metric);
  return it == values.end() || std::isnan(it->second) ? std::string() : csv_number(it->second);
}

}  // namespace

std::string csv_number(double value) {
  std::ostringstream out;
  out << std::setprecision(10) << value;
  return out.str();
}

std::string format_metric_cell(const EvaluationRecord& record, const std::string& metric, int digits) {
  const auto mean = record.mean.find(metric);
  if (mean == record.mean.end()) return "";
  std::string text = fixed(mean->second, digits);
  if (const auto sd = record.sd.find(metric); sd != record.sd.end() && !std::isnan(sd->second))
    return text + " ± " + fixed(sd->second, digits);
  const auto low = record.ci_low.find(metric), high = record.ci_high.find(metric);
  if (low != record.ci_low.end() && high != record.ci_high.end() && !std::isnan(low->second))
    return text + " [" + fixed(low->second, digits) + ", " + fixed(high->second, digits) + "]";
  return text;
}

ComparisonTable build_comparison_table(const std::vector<EvaluationRecord>& records, int digits) {
  // Rows that two sources would both fill in the same column are told apart by their source.
  std::map<std::tuple<std::string, std::string, std::string>, std::set<std::string>> sources_per_cell;
  for (const auto& r : records) sources_per_cell[{r.row, r.method, r.setting}].insert(r.source);
  std::set<std::string> ambiguous_rows;
  for (const auto& [key, sources] : sources_per_cell)
    if (sources.size() > 1) ambiguous_rows.insert(std::get<0>(key));

  std::set<ColumnKey> columns;
  std::set<std::string> rows;
  ComparisonTable table;
  for (const auto& r : records) {
    const std::string row = ambiguous_rows.count(r.row) ? r.row + " (" + r.source + ")" : r.row;
    rows.insert(row);
    for (const auto& [metric, value] : r.mean) {
      (void)value;
      const ColumnKey key{r.method, r.setting, metric};
      columns.insert(key);
      table.cells[row][key.text()] = format_metric_cell(r, metric, digits);
    }
  }
  table.rows.assign(rows.begin(), rows.end());
  for (const auto& c : columns) table.columns.push_back(c.text());
  return table;
}

std::string comparison_markdown(const ComparisonTable& table) {
  std::ostringstream out;
  out << "| encoder |";
  for (const auto& c : table.columns) out << ' ' << c << " |";
  out << "\n|---|";
  for (std::size_t i = 0; i < table.columns.size(); ++i) out << "---|";
  out << '\n';
  for (const auto& row : table.rows) {
    out << "| " << row << " |";
    const auto& cells = table.cells.at(row);
    for (const auto& c : table.columns) {
      const auto it = cells.find(c);
      out << ' ' << (it == cells.end() ? std::string("–") : it->second) << " |";
    }
    out << '\n';
  }
  return out.str();
}

std::string comparison_csv(const std::vector<EvaluationRecord>& records) {
  std::vector<const EvaluationRecord*> sorted;
  for (const auto& r : records) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](const EvaluationRecord* a, const EvaluationRecord* b) {
    return std::tie(a->row, a->method, a->setting, a->source) < std::tie(b->row, b->method, b->setting, b->source);
  });
  std::ostringstream out;
  out << "encoder,method,setting,metric,mean,sd,ci_low,ci_high,source\n";
  for (const auto* r : sorted)
    for (const auto& [metric, value] : r->mean) {
      (void)value;
      out << csv_row({r->row, r->method, r->setting, metric, optional_number(r->mean, metric), optional_number(r->sd, metric),
                      optional_number(r->ci_low, metric), optional_number(r->ci_high, metric), r->source});
    }
  return out.str();
}

}  // namespace histoflow::evaluation_common
