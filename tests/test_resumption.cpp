// Resumable stages: finished items are restored, and the work upstream of them is skipped only where
// nothing else depends on it. Lineages follow exactly the parameters that change results.
#include <catch2/catch.hpp>

#include "support/graph_helpers.hpp"
#include "support/test_stages.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

const StageStats& stats_of(const RunResult& result, const std::string& id) {
  for (const auto& s : result.stages)
    if (s.id == id) return s;
  FAIL("no stage " << id);
  throw std::logic_error("unreachable");
}

std::string lineage_of(const std::string& stage_text, const std::string& id) {
  Observed::instance().reset();
  const auto out = fresh_folder("lineage");
  const RunResult result = run_quietly(load_valid(graph_text(stage_text, out)));
  REQUIRE(result.status == RunStatus::Completed);
  const auto seen = Observed::instance().seen(id + ".lineage");
  REQUIRE(seen.size() == 1);
  return seen.front().item;
}

const char* kChain = R"(
[stage.src]
use = "test_source"
count = 20
[stage.map]
use = "test_map"
input = "src"
[stage.store]
use = "test_resumable"
input = "map"
done_every = 2
[stage.after]
use = "test_sink"
input = "store"
)";

}  // namespace

TEST_CASE("restored items skip the work upstream and still reach downstream stages", "[runtime][resume]") {
  shared_loader();
  Observed::instance().reset();
  const RunResult result = run_quietly(load_valid(graph_text(kChain, fresh_folder("resume"))));
  REQUIRE(result.status == RunStatus::Completed);
  CHECK(Observed::instance().seen("map").size() == 10);    // the odd items only
  CHECK(Observed::instance().seen("store").size() == 10);
  CHECK(Observed::instance().seen("after").size() == 20);  // restored and computed alike
  CHECK(stats_of(result, "store").restored == 10);
  CHECK(stats_of(result, "map").skipped == 10);
  CHECK(Observed::instance().in_flight.load() == 0);
  CHECK(result.items_retired == 20);
  CHECK(format_run_summary(result).find("resumed: stage 'store' restored 10") != std::string::npos);
}

TEST_CASE("work another sink needs is not skipped for restored items", "[runtime][resume]") {
  shared_loader();
  Observed::instance().reset();
  const std::string text = std::string(kChain) + R"(
[stage.other]
use = "test_sink"
input = "map"
release = false
)";
  const RunResult result = run_quietly(load_valid(graph_text(text, fresh_folder("resume-fanout"))));
  REQUIRE(result.status == RunStatus::Completed);
  CHECK(Observed::instance().seen("map").size() == 20);
  CHECK(Observed::instance().seen("other").size() == 20);
  CHECK(Observed::instance().seen("store").size() == 10);  // restored items are not processed twice
  CHECK(Observed::instance().seen("after").size() == 20);
  CHECK(stats_of(result, "map").skipped == 0);
}

TEST_CASE("a stage's lineage changes with output-affecting parameters, its own and upstream", "[runtime][resume]") {
  shared_loader();
  const auto chain = [](int salt, int note, int map_delay) {
    return "[stage.src]\nuse = \"test_source\"\ncount = 2\n[stage.map]\nuse = \"test_map\"\ninput = \"src\"\ndelay_us = " +
           std::to_string(map_delay) + "\n[stage.store]\nuse = \"test_resumable\"\ninput = \"map\"\ndone_every = 0\nsalt = " +
           std::to_string(salt) + "\nnote = " + std::to_string(note) + "\n[stage.after]\nuse = \"test_sink\"\ninput = \"store\"\n";
  };
  const std::string base = lineage_of(chain(0, 0, 0), "store");
  CHECK(base.size() == 64);
  CHECK(lineage_of(chain(0, 0, 0), "store") == base);  // deterministic
  CHECK(lineage_of(chain(0, 7, 0), "store") == base);  // `note` does not affect results
  CHECK(lineage_of(chain(1, 0, 0), "store") != base);  // its own parameter
  CHECK(lineage_of(chain(0, 0, 5), "store") != base);  // an upstream parameter
}

TEST_CASE("an ordered resumable stage gets the items after the restored ones, in order, without waiting for them",
          "[runtime][resume]") {
  // The restored items are skipped in the map; the ordered input still needs their sequence numbers.
  shared_loader();
  Observed::instance().reset();
  std::string chain = kChain;
  chain.replace(chain.find("test_resumable"), std::string("test_resumable").size(), "test_ordered_resumable");
  const RunResult result = run_quietly(load_valid(graph_text(chain, fresh_folder("resume-ordered"), 4)));
  REQUIRE(result.status == RunStatus::Completed);
  const auto seen = Observed::instance().seen("store");
  REQUIRE(seen.size() == 10);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i].sequence == 2 * i + 1);  // the odd items, in order
  CHECK(stats_of(result, "map").skipped == 10);
  CHECK(stats_of(result, "store").restored == 10);
  CHECK(Observed::instance().seen("after").size() == 20);
  CHECK(result.items_retired == 20);
}
