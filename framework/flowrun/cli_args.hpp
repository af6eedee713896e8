#pragma once
// Command-line parsing for flowrun: a command word, positionals, and options with values.
#include <map>
#include <string>
#include <vector>

namespace histoflow::cli {

struct OptionSpec {
  std::string name;      // "--trace"
  bool takes_value = false;
  bool repeatable = false;
};

struct ParsedArgs {
  std::vector<std::string> positionals;
  std::map<std::string, std::vector<std::string>> options;  // values in order; flags map to {""}
  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::string value(const std::string& name, const std::string& fallback = "") const;
};

// Throws UsageError on unknown options, missing values or repeats of a non-repeatable option.
ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs);

}  // namespace histoflow::cli
