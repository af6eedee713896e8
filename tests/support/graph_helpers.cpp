#include "support/graph_helpers.hpp"

#include <catch2/catch.hpp>

#include "support/test_stages.hpp"

namespace histoflow::testing {

PluginLoader& shared_loader() {
  static PluginLoader loader = [] {
    PluginLoader l;
    l.load_directory(HISTOFLOW_PLUGIN_BUILD_DIR);
    register_test_stages();
    return l;
  }();
  return loader;
}

std::string graph_text(const std::string& stages, const std::filesystem::path& output, std::int64_t max_in_flight,
                       const std::string& run_extra) {
  return "schema_version = 1\n[experiment]\nname = \"test\"\noutput = \"" + output.string() + "\"\nseed = 3\n[run]\nmax_in_flight = " +
         std::to_string(max_in_flight) + "\n" + run_extra + "\n" + stages;
}

GraphSpec load_valid(const std::string& text) {
  GraphLoad load = load_graph_text(text, "test.toml", {}, shared_loader());
  std::string problems;
  for (const auto& d : load.diagnostics) problems += d.format() + "\n";
  INFO(problems);
  REQUIRE(load.ok());
  return load.spec;
}

std::vector<Diagnostic> diagnostics_of(const std::string& text, const std::vector<Override>& overrides) {
  return load_graph_text(text, "test.toml", overrides, shared_loader()).diagnostics;
}

RunResult run_quietly(const GraphSpec& spec, RunOptions options) {
  options.progress = ProgressMode::Off;
  return run_graph(spec, options);
}

}  // namespace histoflow::testing
