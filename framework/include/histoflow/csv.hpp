#pragma once
// CSV (RFC 4180), both ways. Writing: every plugin that writes a CSV file quotes its fields here, so a name
// with a comma, a quote or a line break cannot shift the columns of a row. Reading: quoted fields (with doubled
// quotes and embedded delimiters or newlines), a configurable delimiter, a header row, and the line number of
// every record for error messages (manifests, the HTML report's inputs).
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace histoflow {

// The field as it goes into a CSV row: unchanged unless it holds a comma, a double quote, CR or LF; then
// wrapped in double quotes with each double quote doubled.
std::string csv_field(std::string_view text);

// One CSV row: the fields, each through csv_field, joined by commas and ended by '\n'.
std::string csv_row(const std::vector<std::string>& fields);

struct CsvRecord {
  int line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

struct CsvTable {
  std::vector<std::string> header;
  std::vector<CsvRecord> records;
  int header_line = 1;
  // Index of a header column, or -1.
  int column(const std::string& name) const;
};

// Throws std::runtime_error naming the file (and line) on unreadable files, unterminated quotes, or an
// empty file. Blank lines are skipped; a UTF-8 byte-order mark is ignored.
CsvTable read_csv(const std::filesystem::path& file, char delimiter);
CsvTable parse_csv(const std::string& text, char delimiter, const std::string& name);

}  // namespace histoflow
