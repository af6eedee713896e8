#include "cli_args.hpp"

#include <algorithm>

#include "histoflow/errors.hpp"

namespace histoflow::cli {

std::string ParsedArgs::value(const std::string& name, const std::string& fallback) const {
  auto it = options.find(name);
  return it == options.end() || it->second.empty() ? fallback : it->second.back();
}

ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs) {
  ParsedArgs parsed;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg.rfind("--", 0) != 0) {
      parsed.positionals.push_back(arg);
      continue;
    }
    std::string name = arg;
    std::string value;
    bool inline_value = false;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return s.name == name; });
    if (spec == specs.end()) throw UsageError("unknown option '" + name + "' (see --help)");
    if (spec->takes_value && !inline_value) {
      if (i + 1 >= args.size()) throw UsageError("option '" + name + "' needs a value");
      value = args[++i];
    } else if (!spec->takes_value && inline_value) {
      throw UsageError("option '" + name + "' takes no value");
    }
    auto& values = parsed.options[name];
    if (!values.empty() && !spec->repeatable) throw UsageError("option '" + name + "' given twice");
    values.push_back(value);
  }
  return parsed;
}

}  // namespace histoflow::cli
