#include "histoflow/csv.hpp"

#include <stdexcept>

#include "histoflow/input_limits.hpp"

namespace histoflow {

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::string row;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) row += ',';
    row += csv_field(fields[i]);
  }
  return row + "\n";
}

int CsvTable::column(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

CsvTable parse_csv(const std::string& input, char delimiter, const std::string& name) {
  std::string_view text(input);
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<CsvRecord> rows;
  CsvRecord record;
  std::string field;
  bool in_quotes = false, field_started = false, record_has_content = false;
  int line = 1;
  record.line = 1;
  const auto end_field = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
    field_started = false;
  };
  const auto end_record = [&] {
    end_field();
    const bool blank = record.fields.size() == 1 && record.fields[0].empty() && !record_has_content;
    if (!blank) rows.push_back(std::move(record));
    record = CsvRecord{};
    record_has_content = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      in_quotes = true;
      field_started = true;
      record_has_content = true;
    } else if (c == delimiter) {
      end_field();
      record_has_content = true;
    } else if (c == '\r') {
      // tolerated before \n (Windows line ends)
    } else if (c == '\n') {
      end_record();
      record.line = ++line;
    } else {
      field += c;
      field_started = true;
      record_has_content = true;
    }
  }
  if (in_quotes) throw std::runtime_error(name + ":" + std::to_string(record.line) + ": unterminated quoted field");
  if (record_has_content || !field.empty()) end_record();
  if (rows.empty()) throw std::runtime_error(name + ": the file is empty (a header row is needed)");
  CsvTable table;
  table.header_line = rows.front().line;
  table.header = std::move(rows.front().fields);
  for (auto& h : table.header) {
    const auto first = h.find_first_not_of(" \t");
    const auto last = h.find_last_not_of(" \t");
    h = first == std::string::npos ? std::string() : h.substr(first, last - first + 1);
  }
  table.records.assign(std::make_move_iterator(rows.begin() + 1), std::make_move_iterator(rows.end()));
  return table;
}

CsvTable read_csv(const std::filesystem::path& file, char delimiter) {
  return parse_csv(read_file_within_limit(file, InputLimit::CsvFileBytes), delimiter, file.string());
}

}  // namespace histoflow
