#include "histoflow/evaluation_common/reference_table.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "histoflow/csv.hpp"
#include "histoflow/svg_plot.hpp"

namespace histoflow::evaluation_common {
namespace {

using CellKey = std::tuple<std::string, std::string, std::string, std::string>;  // encoder, method, setting, metric

// "+0.012", "-0.027": a difference with its sign ("0.000" for one that rounds to nothing).
std::string signed_fixed(double value, int digits) {
  const std::string text = svg::fixed(value, digits);
  return text.front() == '-' || text.find_first_not_of("0.") == std::string::npos ? text : "+" + text;
}

}  // namespace

std::vector<ReferenceValue> read_reference_table(const std::filesystem::path& file) {
  const CsvTable table = read_csv(file, ',');
  const auto where = [&](int line) { return "reference table '" + file.string() + "' line " + std::to_string(line) + ": "; };
  std::map<std::string, int> column;
  for (const char* name : {"encoder", "method", "setting", "metric", "value", "source"}) {
    column[name] = table.column(name);
    if (column[name] < 0)
      throw std::runtime_error(where(table.header_line) + "no column '" + name +
                               "' (a reference table has encoder, method, setting, metric, value, source)");
  }
  std::vector<ReferenceValue> values;
  std::set<CellKey> seen;
  for (const auto& record : table.records) {
    const auto field = [&](const char* name) {
      const auto index = static_cast<std::size_t>(column[name]);
      return index < record.fields.size() ? record.fields[index] : std::string();
    };
    ReferenceValue v{field("encoder"), field("method"), field("setting"), field("metric"), 0, field("source"), record.line};
    const std::string text = field("value");
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), v.value);
    if (text.empty() || parsed.ec != std::errc() || parsed.ptr != text.data() + text.size() || !std::isfinite(v.value))
      throw std::runtime_error(where(record.line) + "value '" + text + "' is not a number");
    if (v.encoder.empty() || v.method.empty() || v.setting.empty() || v.metric.empty())
      throw std::runtime_error(where(record.line) + "encoder, method, setting and metric must not be empty");
    if (!seen.insert({v.encoder, v.method, v.setting, v.metric}).second)
      throw std::runtime_error(where(record.line) + v.encoder + " · " + v.method + " · " + v.setting + " · " + v.metric +
                               " is given twice");
    values.push_back(std::move(v));
  }
  return values;
}

std::vector<EvaluationRecord> reference_records(const std::vector<ReferenceValue>& reference, const std::vector<EvaluationRecord>& run) {
  std::set<std::tuple<std::string, std::string, std::string>> columns;  // method, setting, metric
  for (const auto& r : run)
    for (const auto& [metric, value] : r.mean) columns.insert({r.method, r.setting, metric});
  std::map<std::tuple<std::string, std::string, std::string>, EvaluationRecord> by_cell;  // encoder, method, setting
  std::vector<std::tuple<std::string, std::string, std::string>> order;
  for (const auto& v : reference) {
    if (!columns.count({v.method, v.setting, v.metric})) continue;
    const auto key = std::make_tuple(v.encoder, v.method, v.setting);
    auto [it, inserted] = by_cell.try_emplace(key);
    if (inserted) {
      order.push_back(key);
      it->second.row = v.encoder + " (reference)";
      it->second.method = v.method;
      it->second.setting = v.setting;
      it->second.source = kReferenceSource;
    }
    it->second.mean[v.metric] = v.value;
  }
  std::vector<EvaluationRecord> records;
  for (const auto& key : order) records.push_back(by_cell.at(key));
  return records;
}

std::vector<ReferenceDifference> compare_with_reference(const std::vector<EvaluationRecord>& records,
                                                        const std::vector<ReferenceValue>& reference) {
  std::map<CellKey, double> run;
  for (const auto& r : records)
    for (const auto& [metric, value] : r.mean) run[{r.row, r.method, r.setting, metric}] = value;
  std::vector<ReferenceDifference> differences;
  for (const auto& v : reference) {
    const auto it = run.find({v.encoder, v.method, v.setting, v.metric});
    if (it != run.end() && !std::isnan(it->second))
      differences.push_back({v.encoder, v.method, v.setting, v.metric, it->second, v.value, v.source});
  }
  return differences;
}

std::string reference_markdown(const std::vector<ReferenceDifference>& differences, int digits) {
  const auto cell = [](std::string text) {  // a '|' in a citation would split the Markdown cell
    for (std::size_t at = text.find('|'); at != std::string::npos; at = text.find('|', at + 2)) text.replace(at, 1, "\\|");
    return text;
  };
  std::ostringstream out;
  out << "| encoder | method · setting · metric | run | reference | difference | reference source |\n|---|---|---|---|---|---|\n";
  for (const auto& d : differences)
    out << "| " << d.encoder << " | " << d.method << " · " << d.setting << " · " << d.metric << " | " << svg::fixed(d.run, digits) << " | "
        << svg::fixed(d.reference, digits) << " | " << signed_fixed(d.difference(), digits) << " | " << cell(d.source) << " |\n";
  return out.str();
}

std::string reference_csv(const std::vector<ReferenceDifference>& differences) {
  std::string out = "encoder,method,setting,metric,run,reference,difference,source\n";
  for (const auto& d : differences)
    out += csv_row({d.encoder, d.method, d.setting, d.metric, csv_number(d.run), csv_number(d.reference), csv_number(d.difference()), d.source});
  return out;
}

}  // namespace histoflow::evaluation_common
