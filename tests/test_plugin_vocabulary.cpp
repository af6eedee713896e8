// One vocabulary across every plugin this build produces: each port names a packet kind that the framework or
// a plugin declares, and every declared kind is used by some port (no kind declared for nothing).
#include <catch2/catch.hpp>

#include <set>

#include "histoflow/registry.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;

TEST_CASE("every port of every plugin names a declared packet kind", "[kinds][plugins]") {
  testing::shared_loader();
  const Registry& registry = Registry::instance();
  std::set<std::string> used;
  std::size_t stage_types = 0;
  for (const auto& type : registry.types()) {
    const StageContract& contract = *registry.find(type);
    if (type.rfind("test_", 0) == 0) continue;  // the tests' own stages
    ++stage_types;
    for (const auto* list : {&contract.inputs, &contract.outputs})
      for (const auto& port : *list) {
        if (port.kind == kAnyKind) continue;
        INFO("stage type " << type << " (" << contract.plugin_file << "), port " << port.name);
        CHECK(registry.find_kind(port.kind) != nullptr);
        used.insert(port.kind);
      }
  }
  CHECK(stage_types >= 19);  // every plugin of the build loaded
  for (const char* kind : {"tile", "features", "slide", "tile_ref", "tile_grid", "feature_file", "evaluation"}) {
    INFO("kind " << kind);
    REQUIRE(registry.find_kind(kind) != nullptr);
    CHECK(used.count(kind) == 1);
  }
  for (const auto& kind : registry.kind_names())
    if (kind != "item" && kind != "test_tile") {
      INFO("declared kind " << kind << " is named by no port");
      CHECK(used.count(kind) == 1);
    }
}
