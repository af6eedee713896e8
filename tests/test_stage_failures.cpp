// No signal ever reaches the user: whatever a stage throws while it is created or opened, for every stage
// type of every plugin, becomes one "stage 'id' (type): ..." fatal message and a run summary that says failed.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "histoflow/registry.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

// A one-stage graph with the stage's defaults; required parameters get values that cannot work (a file
// that does not exist, an empty text, the first allowed choice), so stages that check them fail for real.
GraphSpec one_stage_graph(const StageContract& contract, const std::filesystem::path& out) {
  GraphSpec spec;
  spec.file = out / "graph.toml";
  spec.experiment.name = "stage-failure";
  spec.experiment.output_dir = out;
  spec.experiment.graph_file = spec.file;
  StageSpec stage;
  stage.id = "under_test";
  stage.type = contract.type;
  stage.contract = &contract;
  for (const auto& p : contract.params) {
    Value value = p.default_value;
    if (p.required) {
      switch (p.type) {
        case ParamType::Path: value = (out / "does-not-exist" / "input.file").string(); break;
        case ParamType::String: value = p.allowed().empty() ? std::string() : p.allowed().front(); break;
        case ParamType::Int: value = static_cast<std::int64_t>(p.min.value_or(0)); break;
        case ParamType::Float: value = p.min.value_or(0.0); break;
        case ParamType::Bool: value = false; break;
        case ParamType::StringList: value = std::vector<std::string>{}; break;
        case ParamType::FloatList: value = std::vector<double>{}; break;
      }
    }
    stage.params[p.name] = value;
  }
  spec.stages.push_back(stage);
  spec.topo_order = {0};
  return spec;
}

struct Injected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

TEST_CASE("every stage type: a throwing constructor or open() fails the run with the stage named", "[runtime][failures]") {
  shared_loader();
  const auto types = Registry::instance().types();
  REQUIRE(types.size() >= 20);  // every plugin of the build is loaded
  for (const auto& type : types) {
    const StageContract& contract = *Registry::instance().find(type);
    const std::string prefix = "stage 'under_test' (" + type + "): ";
    for (const std::string phase : {"create", "open"}) {
      INFO(type << ", injected at " << phase);
      const auto out = fresh_folder("stage-failure");
      const GraphSpec spec = one_stage_graph(contract, out);
      RunOptions options;
      options.before_stage_phase = [&](const StageSpec& stage, std::string_view at) {
        // A real constructor runs only when create is not the injected phase; open needs a created stage.
        if (stage.id == "under_test" && at == phase) throw Injected("injected failure");
      };
      std::atomic<bool> cancel{true};  // a stage that happened to open fine would otherwise start work
      options.cancel = &cancel;
      const RunResult result = run_quietly(spec, options);
      if (phase == "create" || result.status == RunStatus::Failed) {
        REQUIRE(result.status == RunStatus::Failed);
        CHECK(result.exit_code() == 1);
        CHECK_THAT(result.fatal_message, Catch::StartsWith(prefix + "cannot be"));
        std::ifstream in(out / "run_summary.json");
        const auto summary = nlohmann::json::parse(in);
        CHECK(summary["status"] == "failed");
        CHECK(summary["fatal"] == result.fatal_message);
      }
      if (phase == "create") CHECK(result.fatal_message == prefix + "cannot be created: injected failure");
    }
  }
}

TEST_CASE("every stage type: parameters that cannot work fail at creation or opening, never with a signal",
          "[runtime][failures]") {
  shared_loader();
  std::size_t failed = 0;
  for (const auto& type : Registry::instance().types()) {
    INFO(type);
    const StageContract& contract = *Registry::instance().find(type);
    const auto out = fresh_folder("stage-bad-params");
    const GraphSpec spec = one_stage_graph(contract, out);
    RunOptions options;
    std::atomic<bool> cancel{true};
    options.cancel = &cancel;
    const RunResult result = run_quietly(spec, options);
    if (result.status != RunStatus::Failed) {
      CHECK(result.status == RunStatus::Cancelled);  // nothing wrong with its defaults alone
      continue;
    }
    ++failed;
    CHECK_THAT(result.fatal_message, Catch::StartsWith("stage 'under_test' (" + type + "): cannot be"));
  }
  // Stages with required inputs (a manifest, a backbone's weights, a patch folder) must be among the failures.
  CHECK(failed >= 3);
}
