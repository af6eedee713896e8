// The tracer: valid Chrome trace JSON, consistent spans, and a summary that finds the slow stage.
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <thread>
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
  std::map<std::string, std::size_t> phases;
  std::size_t counters = 0;
  for (const auto& e : trace["traceEvents"]) {
    const std::string ph = e["ph"];
    if (ph == "X") {
      const double ts = e["ts"], dur = e["dur"];
      if (e["args"].contains("phase")) {  // create, open, flush and close: once per stage each
        ++phases[e["name"].get<std::string>() + " " + e["args"]["phase"].get<std::string>()];
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
  for (const std::string stage : {"src", "fast", "slow", "batched"})
    for (const std::string phase : {"create", "open", "flush", "close"}) {
      INFO(stage << " " << phase);
      CHECK(phases[stage + " " + phase] == 1);
    }

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

// "A queue that keeps growing sits in front of a slow stage": the counter of a stage counts the packets that
// reached it and wait for their call, including those collected into a batch that has not started.
TEST_CASE("queue counters show the backlog in front of the slow stage, batched or not", "[tracer]") {
  Observed::instance().reset();
  const auto out = fresh_folder("trace-queues");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 200
[stage.fast]
use = "test_map"
input = "src"
[stage.slow]
use = "test_batch_sink"
input = "fast"
batch = 4
delay_us = 3000
)", out, 64));
  RunOptions options;
  options.trace_file = out / "trace.json";
  options.threads = 2;
  REQUIRE(run_quietly(spec, options).status == RunStatus::Completed);

  const TraceSummary summary = summarize_trace(options.trace_file);
  const auto stage = [&](const std::string& id) {
    return *std::find_if(summary.stages.begin(), summary.stages.end(), [&](const auto& s) { return s.id == id; });
  };
  // 64 items may be in flight: most of the time nearly all of them wait in front of the slow stage, and
  // almost none in front of the fast one (scheduling may let it hold a burst briefly).
  INFO("mean queue: slow " << stage("slow").mean_queue << ", fast " << stage("fast").mean_queue);
  CHECK(stage("slow").max_queue >= 40);
  CHECK(stage("slow").max_queue <= 64);
  CHECK(stage("slow").mean_queue >= 20);
  CHECK(stage("fast").mean_queue <= 8);
  CHECK(stage("slow").mean_queue >= 4 * stage("fast").mean_queue);

  std::ifstream in(options.trace_file);
  const auto trace = nlohmann::json::parse(in);
  double last_ts = -1;
  std::int64_t last_slow = -1;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "C") continue;
    CHECK(e["args"]["depth"].get<std::int64_t>() >= 0);
    if (e["name"] == "queue slow" && e["ts"].get<double>() >= last_ts) {
      last_ts = e["ts"];
      last_slow = e["args"]["depth"];
    }
  }
  CHECK(last_slow == 0);  // drained at the end
}

TEST_CASE("start-up shows in the trace: a slow open() is a span and in the summary", "[tracer]") {
  const auto out = fresh_folder("trace-open");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 5
[stage.sink]
use = "test_sink"
input = "src"
)", out));
  RunOptions options;
  options.trace_file = out / "trace.json";
  // The fault-injection hook runs inside the traced open phase: a 300 ms sleep stands in for loading a model.
  options.before_stage_phase = [](const StageSpec& stage, std::string_view phase) {
    if (stage.id == "sink" && phase == "open") std::this_thread::sleep_for(std::chrono::milliseconds(300));
  };
  const RunResult result = run_quietly(spec, options);
  REQUIRE(result.status == RunStatus::Completed);
  const auto sink = std::find_if(result.stages.begin(), result.stages.end(), [](const auto& s) { return s.id == "sink"; });
  CHECK(sink->open_seconds >= 0.3);
  const TraceSummary summary = summarize_trace(options.trace_file);
  const auto traced = std::find_if(summary.stages.begin(), summary.stages.end(), [](const auto& s) { return s.id == "sink"; });
  CHECK(traced->startup_seconds >= 0.3);
  CHECK(traced->busy_seconds < 0.3);  // start-up is not busy time of the stream
  CHECK(format_trace_summary(summary).find("start-up: ") != std::string::npos);
  CHECK(summary.wall_seconds >= 0.3);  // the trace's wall time includes start-up
}
