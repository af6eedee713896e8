#pragma once
// A small RFC 4180 CSV reader: quoted fields (with doubled quotes and embedded delimiters or newlines),
// a configurable delimiter, a header row, and the line number of every record for error messages.
#include <filesystem>
#include <string>
#include <vector>

namespace histoflow::slides {

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

}  // namespace histoflow::slides
