// Every file in tests/bad_graphs states its expected diagnostics as "# expect: LINE: SUBSTRING";
// validation must report exactly those, each on its line.
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {
struct Expectation {
  int line;
  std::string text;
};
}  // namespace

TEST_CASE("the bad-graph corpus reports every expected error with its line", "[validation][corpus]") {
  const std::filesystem::path corpus = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests" / "bad_graphs";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(corpus))
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 20);

  const std::regex expect_line(R"(^# expect: (\d+): (.*)$)");
  const std::regex set_line(R"(^# set: (.*)$)");
  for (const auto& file : files) {
    std::vector<Expectation> expected;
    std::vector<Override> overrides;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (std::regex_match(line, m, expect_line)) expected.push_back({std::stoi(m[1]), m[2]});
      else if (std::regex_match(line, m, set_line)) overrides.push_back(parse_override(m[1]));
    }
    const GraphLoad load = load_graph(file, overrides, shared_loader());
    std::string printed;
    for (const auto& d : load.diagnostics) printed += d.format() + "\n";
    INFO(file.filename().string() << " printed:\n" << printed);
    REQUIRE_FALSE(expected.empty());
    CHECK(load.diagnostics.size() == expected.size());
    for (const auto& e : expected) {
      INFO("expected at line " << e.line << ": " << e.text);
      const bool found = std::any_of(load.diagnostics.begin(), load.diagnostics.end(), [&](const Diagnostic& d) {
        return d.pos.line == e.line && d.format().find(e.text) != std::string::npos;
      });
      CHECK(found);
    }
  }
}
