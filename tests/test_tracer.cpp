// The tracer: valid Chrome trace JSON, consistent spans, and a summary that finds the slow stage.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "histoflow/tracer.hpp"
#include "support/graph_helpers.hpp"
#include "support/test_stages.hpp"

using namespace histoflow;
using namespace histoflow::testing;

TEST_CASE("a traced run writes consistent Chrome trace JSON and names the bottleneck", "[tracer]") {
  Observed::instance().reset();
  const auto out = fresh_folder("trace");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 300
[stage.fast]
use = "test_map"
input = "src"
[stage.slow]
use = "test_sink"
input = "fast"
delay_us = 2000
[stage.batched]
use = "test_batch_sink"
input = "fast"
batch = 7
)", out));
  RunOptions options;
  options.trace_file = out / "trace.json";
  const RunResult result = run_quietly(spec, options);
  REQUIRE(result.status == RunStatus::Completed);

  std::ifstream in(options.trace_file);
  const auto trace = nlohmann::json::parse(in);  // throws if the JSON is malformed
  REQUIRE(trace["traceEvents"].is_array());
  const double wall_us = trace["histoflow"]["wall_us"].get<double>();
  std::map<std::string, std::size_t> spans;
  std::map<std::string, std::int64_t> items;
  std::map<std::string, std::size_t> flushes;
  std::size_t counters = 0;
  for (const auto& e : trace["traceEvents"]) {
    const std::string ph = e["ph"];
    if (ph == "X") {
      const double ts = e["ts"], dur = e["dur"];
      if (e["args"].contains("phase")) {  // the end-of-stream flush: one per stage
        CHECK(e["args"]["phase"] == "flush");
        ++flushes[e["name"]];
        continue;
      }
      CHECK(ts >= 0);
      CHECK(dur >= 0);
      CHECK(ts + dur <= wall_us + 1);
      CHECK(e["tid"].get<int>() > 0);
      ++spans[e["name"]];
      items[e["name"]] += e["args"]["batch"].get<std::int64_t>();
    } else if (ph == "C") {
      ++counters;
      CHECK(e["args"]["depth"].get<std::int64_t>() >= 0);
    }
  }
  // One span per stage call: the source generated 300 items, each stage saw each item.
  CHECK(spans["src"] == 300);
  CHECK(spans["fast"] == 300);
  CHECK(spans["slow"] == 300);
  CHECK(spans["batched"] == 43);  // ceil(300 / 7)
  CHECK(items["batched"] == 300);
  CHECK(counters > 0);
  CHECK(flushes["slow"] == 1);
  CHECK(flushes["batched"] == 1);

  const TraceSummary summary = summarize_trace(options.trace_file);
  CHECK(summary.bottleneck == "slow");
  const auto slow = std::find_if(summary.stages.begin(), summary.stages.end(), [](const auto& s) { return s.id == "slow"; });
  REQUIRE(slow != summary.stages.end());
  CHECK(slow->calls == 300);
  CHECK(slow->mean_ms >= 2.0);
  CHECK(slow->p95_ms >= slow->mean_ms * 0.9);
  CHECK(slow->utilisation > 0.5);
  CHECK(slow->utilisation <= 1.01);
  const std::string text = format_trace_summary(summary);
  CHECK(text.find("bottleneck: slow") != std::string::npos);
}

TEST_CASE("summarising a file that is not a trace fails with its name", "[tracer]") {
  const auto out = fresh_folder("badtrace");
  std::ofstream(out / "broken.json") << "{\"traceEvents\": [";
  CHECK_THROWS_WITH(summarize_trace(out / "broken.json"), Catch::Contains("broken.json") && Catch::Contains("not valid JSON"));
  std::ofstream(out / "other.json") << "{\"a\": 1}";
  CHECK_THROWS_WITH(summarize_trace(out / "other.json"), Catch::Contains("not written by flowrun"));
}
