// Graph templates: [lists] and [template.<name>] expand into stages before validation.
#include <catch2/catch.hpp>

#include <algorithm>

#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

const std::string kTemplated = R"(
[lists]
counts = ["3", "5"]
delays = ["0", "7"]

[template.src]
for = { count = "counts" }
use = "test_source"
count = 1

[template.map]
for = { count = "counts", delay = "delays" }
use = "test_map"
input = "src_{count}"
fail_every = 0

[stage.sink]
use = "test_batch_sink"
inputs = ["map"]
)";

const StageSpec& stage_of(const GraphSpec& spec, const std::string& id) {
  const std::size_t index = spec.find_stage(id);
  INFO("stage " << id);
  REQUIRE(index != std::string::npos);
  return spec.stages[index];
}

std::vector<std::string> input_names(const StageSpec& stage) {
  std::vector<std::string> names;
  for (const auto& input : stage.inputs) names.push_back(input.stage);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("a template makes one stage per combination of its lists, and its name reads every instance", "[validation][templates]") {
  const GraphSpec spec = load_valid(graph_text(kTemplated, fresh_folder("templates")));
  REQUIRE(spec.stages.size() == 1 + 2 + 4);
  const StageSpec& map = stage_of(spec, "map_5_7");
  CHECK(map.type == "test_map");
  CHECK(map.template_name == "map");
  CHECK(map.template_values == std::vector<std::pair<std::string, std::string>>{{"count", "5"}, {"delay", "7"}});
  CHECK(input_names(map) == std::vector<std::string>{"src_5"});
  CHECK(input_names(stage_of(spec, "sink")) == std::vector<std::string>{"map_3_0", "map_3_7", "map_5_0", "map_5_7"});
  CHECK(spec.edges.size() == 4 + 4);
}

TEST_CASE("variables replace text in parameters, inputs and ids; a template's --set reaches every instance", "[validation][templates]") {
  const std::string text = graph_text(R"(
[template.src]
for = ["2", "9"]
id = "source-{item}"
use = "test_source"
count = 1
[template.sink]
for = ["2", "9"]
use = "test_batch_sink"
input = "source-{item}"
)", fresh_folder("templates-set"));
  auto load = load_graph_text(text, "g.toml",
                              {parse_override("sink.batch=3"), parse_override("sink_9.batch=4"),
                               parse_override("lists.unused=[\"x\"]")},
                              shared_loader());
  INFO((load.ok() ? std::string() : load.diagnostics.front().format()));
  REQUIRE(load.ok());
  CHECK(input_names(stage_of(load.spec, "sink_9")) == std::vector<std::string>{"source-9"});
  CHECK(std::get<std::int64_t>(stage_of(load.spec, "sink_2").params.at("batch")) == 3);
  CHECK(std::get<std::int64_t>(stage_of(load.spec, "sink_9").params.at("batch")) == 4);  // its own --set wins
  CHECK(stage_of(load.spec, "sink_9").param_pos.at("batch").file == "--set sink_9.batch=4");

  load = load_graph_text(text, "g.toml", {parse_override("sink_7.batch=4")}, shared_loader());
  REQUIRE(load.diagnostics.size() == 1);
  CHECK(load.diagnostics[0].format() ==
        "--set sink_7.batch=4: error: stage 'sink_7': --set names a stage that is not in the graph (did you mean 'sink_2'?)");
}

TEST_CASE("a list set with --set changes what the templates make", "[validation][templates]") {
  auto load = load_graph_text(graph_text(kTemplated, fresh_folder("templates-list")), "g.toml",
                              {parse_override("lists.delays=[\"1\"]")}, shared_loader());
  REQUIRE(load.ok());
  CHECK(input_names(stage_of(load.spec, "sink")) == std::vector<std::string>{"map_3_1", "map_5_1"});
}

TEST_CASE("the expanded graph validates to the same stages, inputs and parameters", "[validation][templates]") {
  const GraphSpec spec = load_valid(graph_text(kTemplated, fresh_folder("templates-expand")));
  const std::string expanded = expanded_graph_toml(spec);
  CHECK(expanded.find("\n[template.") == std::string::npos);
  CHECK(expanded.find("# from [template.map] with count = \"5\" delay = \"7\"") != std::string::npos);
  const GraphSpec again = load_valid(expanded);
  REQUIRE(again.stages.size() == spec.stages.size());
  for (const auto& stage : spec.stages) {
    const StageSpec& twin = stage_of(again, stage.id);
    CHECK(twin.type == stage.type);
    CHECK(twin.params == stage.params);
    CHECK(input_names(twin) == input_names(stage));
  }
}

TEST_CASE("a problem every instance shares is reported once against the template", "[validation][templates]") {
  const auto diagnostics = diagnostics_of(graph_text(R"(
[template.src]
for = ["1", "2", "3"]
use = "test_source"
count = "{item}"
counts = 4
[stage.sink]
use = "test_batch_sink"
input = "src"
)", fresh_folder("templates-errors")));
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[0].whole_template);
  CHECK_THAT(diagnostics[0].format(), Catch::EndsWith("error: template 'src': parameter 'count' must be an integer, got a string"));
  CHECK_THAT(diagnostics[1].format(), Catch::EndsWith("error: template 'src': unknown parameter 'counts' for stage type "
                                                      "'test_source' (did you mean 'count'?)"));
  CHECK(diagnostics[1].pos.line == diagnostics[0].pos.line + 1);  // at the template's own lines
}
