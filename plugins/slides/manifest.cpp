#include "histoflow/slides/manifest.hpp"

#include <charconv>
#include <set>
#include <stdexcept>

#include "histoflow/csv.hpp"
#include "histoflow/input_limits.hpp"

namespace histoflow::slides {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::string columns_of(const CsvTable& table) {
  std::string text;
  for (const auto& h : table.header) text += (text.empty() ? "'" : ", '") + h + "'";
  return text;
}

}  // namespace

std::map<std::string, Attribute> slide_attributes(const SlideEntry& slide) {
  std::map<std::string, Attribute> attributes{{"slide_id", slide.id}, {"patient", slide.patient}};
  if (!slide.path.empty()) attributes["path"] = slide.path.string();
  if (!slide.cohort.empty()) attributes["cohort"] = slide.cohort;
  for (const auto& [column, value] : slide.labels) attributes["label:" + column] = value;
  return attributes;
}

Manifest load_manifest(const std::filesystem::path& file, const ManifestOptions& options) {
  const CsvTable table = read_csv(file, options.delimiter);
  const std::string name = file.string();
  check_input_limit(InputLimit::ManifestRows, table.records.size(), "manifest '" + name + "'");
  std::vector<std::string> problems;
  const auto at = [&](int line) { return name + ":" + std::to_string(line) + ": "; };

  const auto require_column = [&](const std::string& column, const char* role) {
    if (column.empty()) return -1;
    const int index = table.column(column);
    if (index < 0)
      problems.push_back(at(table.header_line) + "no " + role + " column '" + column + "' (columns: " + columns_of(table) + ")");
    return index;
  };
  // Without slide files needed, ids from an id column make the slide column optional.
  const bool slide_column_optional = !options.require_slide_files && !options.id_column.empty();
  const int slide_col = slide_column_optional ? (options.slide_column.empty() ? -1 : table.column(options.slide_column))
                                              : require_column(options.slide_column, "slide");
  const int id_col = require_column(options.id_column, "slide id");
  const int patient_col = require_column(options.patient_column, "patient");
  const int cohort_col = require_column(options.cohort_column, "cohort");
  const int mpp_col = require_column(options.mpp_column, "mpp");
  std::vector<int> label_cols;
  for (const auto& label : options.label_columns) label_cols.push_back(require_column(label, "label"));
  if (slide_col < 0 && id_col < 0 && problems.empty())
    problems.push_back(at(table.header_line) + "without a slide column, the slide ids come from an id column: set id_column");
  if (!problems.empty() || (slide_col < 0 && options.require_slide_files)) {
    std::string message = "invalid manifest:";
    for (const auto& p : problems) message += "\n  " + p;
    throw std::runtime_error(message);
  }

  Manifest manifest;
  manifest.file = std::filesystem::absolute(file);
  const auto base = manifest.file.parent_path();
  std::map<std::string, int> first_line_of_id;
  std::vector<std::string> missing;
  for (const auto& record : table.records) {
    if (record.fields.size() != table.header.size()) {
      problems.push_back(at(record.line) + "has " + std::to_string(record.fields.size()) + " fields, the header has " +
                         std::to_string(table.header.size()));
      continue;
    }
    const auto field = [&](int column) { return column < 0 ? std::string() : trim(record.fields[static_cast<std::size_t>(column)]); };
    SlideEntry entry;
    entry.line = record.line;
    const std::string path_text = field(slide_col);
    if (path_text.empty() && options.require_slide_files) {
      problems.push_back(at(record.line) + "empty slide path");
      continue;
    }
    if (!path_text.empty()) {
      entry.path = std::filesystem::path(path_text).is_absolute() ? std::filesystem::path(path_text) : base / path_text;
      entry.path = entry.path.lexically_normal();
    }
    entry.id = id_col >= 0 ? field(id_col) : entry.path.stem().string();
    if (entry.id.empty()) problems.push_back(at(record.line) + "empty slide id");
    entry.patient = patient_col >= 0 ? field(patient_col) : entry.id;
    if (entry.patient.empty()) problems.push_back(at(record.line) + "slide '" + entry.id + "': empty patient id");
    for (std::size_t i = 0; i < label_cols.size(); ++i) {
      const std::string value = field(label_cols[i]);
      if (value.empty())
        problems.push_back(at(record.line) + "slide '" + entry.id + "': empty label '" + options.label_columns[i] + "'");
      entry.labels[options.label_columns[i]] = value;
    }
    entry.cohort = field(cohort_col);
    if (mpp_col >= 0 && !field(mpp_col).empty()) {
      const std::string text = field(mpp_col);
      double value = 0;
      const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
      if (result.ec != std::errc() || result.ptr != text.data() + text.size())
        problems.push_back(at(record.line) + "slide '" + entry.id + "': mpp '" + text + "' is not a number");
      else if (!(value > 0))
        problems.push_back(at(record.line) + "slide '" + entry.id + "': mpp " + text + " must be positive");
      else
        entry.mpp = value;
    }
    if (auto [it, inserted] = first_line_of_id.emplace(entry.id, record.line); !inserted)
      problems.push_back(at(record.line) + "duplicate slide id '" + entry.id + "' (first on line " +
                         std::to_string(it->second) + ")");
    std::error_code ec;
    if (options.require_slide_files && !std::filesystem::is_regular_file(entry.path, ec)) {
      const std::string text = at(record.line) + "slide '" + entry.id + "': file not found: " + entry.path.string();
      if (options.skip_missing) manifest.skipped.push_back(text);
      else missing.push_back(text);
      continue;
    }
    manifest.slides.push_back(std::move(entry));
  }
  if (!missing.empty()) {
    problems.push_back(std::to_string(missing.size()) + " slide file(s) not found (set on_missing = \"skip\" to run without them):");
    for (auto& m : missing) problems.push_back("  " + m);
  }
  if (!problems.empty()) {
    std::string message = "invalid manifest (" + std::to_string(problems.size()) + " problem(s)):";
    for (const auto& p : problems) message += "\n  " + p;
    throw std::runtime_error(message);
  }
  return manifest;
}

}  // namespace histoflow::slides
