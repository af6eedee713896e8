#pragma once
// Writing CSV (RFC 4180): every plugin that writes a CSV file quotes its fields here, so a name with a comma,
// a quote or a line break cannot shift the columns of a row.
#include <string>
#include <string_view>
#include <vector>

namespace histoflow {

// The field as it goes into a CSV row: unchanged unless it holds a comma, a double quote, CR or LF; then
// wrapped in double quotes with each double quote doubled.
std::string csv_field(std::string_view text);

// One CSV row: the fields, each through csv_field, joined by commas and ended by '\n'.
std::string csv_row(const std::vector<std::string>& fields);

}  // namespace histoflow
