// Validation details that the bad-graph corpus does not pin down: overrides, suggestions, paths.
#include <catch2/catch.hpp>

#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {
const std::string kPipeline = R"(
[stage.src]
use = "test_source"
count = 4
[stage.sink]
use = "test_batch_sink"
input = "src"
)";
}

TEST_CASE("a stage parameter set with --set is validated like the file", "[validation][overrides]") {
  const auto out = fresh_folder("overrides");
  auto load = load_graph_text(graph_text(kPipeline, out), "g.toml", {parse_override("sink.batch=5")}, shared_loader());
  REQUIRE(load.ok());
  CHECK(std::get<std::int64_t>(load.spec.stages[load.spec.find_stage("sink")].params.at("batch")) == 5);

  load = load_graph_text(graph_text(kPipeline, out), "g.toml", {parse_override("sink.batch=0")}, shared_loader());
  REQUIRE(load.diagnostics.size() == 1);
  CHECK(load.diagnostics[0].format() ==
        "--set sink.batch=0: error: stage 'sink': parameter 'batch' = 0 is out of range [1, 65536]");

  load = load_graph_text(graph_text(kPipeline, out), "g.toml", {parse_override("experiment.name=renamed")}, shared_loader());
  REQUIRE(load.ok());
  CHECK(load.spec.experiment.name == "renamed");

  CHECK_THROWS_AS(parse_override("no_equals_sign"), UsageError);
  CHECK_THROWS_AS(parse_override("nodot=3"), UsageError);
}

TEST_CASE("a bare word in --set is a string, so a typo in a choice is caught", "[validation][overrides]") {
  const auto diagnostics = diagnostics_of(graph_text(R"(
[stage.tiles]
use = "synthetic_tiles"
count = 4
[stage.stats]
use = "color_stats"
input = "tiles"
[stage.csv]
use = "csv_writer"
input = "stats"
)", fresh_folder("bare")), {parse_override("stats.space=odd")});
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].message == "parameter 'space' = 'odd' is not one of 'rgb', 'od' (did you mean 'od'?)");
}

TEST_CASE("relative paths resolve against the graph file's folder", "[validation][paths]") {
  auto load = load_graph_text("schema_version = 1\n[experiment]\nname = \"p\"\noutput = \"out/here\"\n" + kPipeline,
                              "/data/graphs/g.toml", {}, shared_loader());
  REQUIRE(load.ok());
  CHECK(load.spec.experiment.output_dir == std::filesystem::path("/data/graphs/out/here"));
  load = load_graph_text("schema_version = 1\n[experiment]\nname = \"p\"\n" + kPipeline, "/data/graphs/g.toml", {},
                         shared_loader());
  REQUIRE(load.ok());
  CHECK(load.spec.experiment.output_dir == std::filesystem::path("/data/graphs/runs/p"));
}

TEST_CASE("defaults are filled in and topological order puts sources first", "[validation]") {
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.z_sink]
use = "test_sink"
input = "a_map"
[stage.a_map]
use = "test_map"
input = "m_src"
[stage.m_src]
use = "test_source"
)", fresh_folder("topo")));
  REQUIRE(spec.topo_order.size() == 3);
  CHECK(spec.stages[spec.topo_order[0]].id == "m_src");
  CHECK(spec.stages[spec.topo_order[1]].id == "a_map");
  CHECK(spec.stages[spec.topo_order[2]].id == "z_sink");
  CHECK(std::get<std::int64_t>(spec.stages[spec.find_stage("m_src")].params.at("count")) == 10);
  CHECK(std::get<bool>(spec.stages[spec.find_stage("a_map")].params.at("jitter")) == false);
}

TEST_CASE("dot output names every stage and edge", "[validation][dot]") {
  const GraphSpec spec = load_valid(graph_text(kPipeline, fresh_folder("dot")));
  const std::string dot = graph_to_dot(spec);
  CHECK(dot.find("\"src\" -> \"sink\" [label=\"item\"]") != std::string::npos);
  CHECK(dot.find("digraph") == 0);
}
