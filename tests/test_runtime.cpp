// The runtime: back-pressure, batching, fan-out, ordering, error records, fatal errors, cancellation.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <thread>

#include "support/graph_helpers.hpp"
#include "support/test_stages.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

std::size_t count_lines(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

}  // namespace

TEST_CASE("a million items into a slow sink never exceed max_in_flight", "[runtime][backpressure]") {
  Observed::instance().reset();
  const auto out = fresh_folder("backpressure");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 1000000
[stage.map]
use = "test_map"
input = "src"
[stage.sink]
use = "test_sink"
input = "map"
delay_us = 1
)", out, 8));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  auto& observed = Observed::instance();
  CHECK(observed.generated == 1000000);
  CHECK(observed.sink_calls == 1000000);
  CHECK(observed.in_flight == 0);
  // The independent counter (source increments, sink decrements) never went past the configured bound.
  CHECK(observed.peak_in_flight <= 8);
  CHECK(observed.peak_in_flight >= 2);  // and the bound was actually reached: the pipeline overlapped work
  CHECK(result.peak_in_flight <= 8);
  CHECK(result.items_retired == 1000000);
}

TEST_CASE("a gated output admits expanded packets under the tile budget", "[runtime][backpressure]") {
  Observed::instance().reset();
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.slides]
use = "test_source"
count = 40
[stage.tiler]
use = "test_tiler"
input = "slides"
tiles = 500
[stage.counter]
use = "test_tile_counter"
input = "tiler"
[stage.slow]
use = "test_sink"
input = "counter"
delay_us = 5
[stage.batched]
use = "test_batch_sink"
input = "counter"
batch = 64
release = false
)", fresh_folder("gated"), 4, "max_tiles_in_flight = 24"));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  auto& observed = Observed::instance();
  CHECK(observed.tiles_seen == 40 * 500);
  // Each tile reaches two sinks and leaves the budget only when both are done; the counter drops at one.
  CHECK(observed.peak_tiles_in_flight <= 24);
  CHECK(result.peak_tiles_in_flight <= 24);
  CHECK(result.peak_in_flight <= 4);
  // The batched sink (64) is wider than the tile budget (24): stalled partial batches were flushed.
  std::size_t batched = 0;
  for (const auto& s : observed.seen("batched")) {
    CHECK(s.batch_size <= 24);
    batched += s.batch_size;
  }
  CHECK(batched == 40 * 500);
}

TEST_CASE("batching groups items and flushes the last partial batch", "[runtime][batching]") {
  Observed::instance().reset();
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 103
[stage.sink]
use = "test_batch_sink"
input = "src"
batch = 10
)", fresh_folder("batching"), 64));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  const auto seen = Observed::instance().seen("sink");
  std::size_t total = 0, full = 0, partial = 0;
  for (const auto& s : seen) {
    total += s.batch_size;
    CHECK(s.batch_size <= 10);
    (s.batch_size == 10 ? full : partial) += 1;
  }
  CHECK(total == 103);
  CHECK(full == 10);
  CHECK(partial == 1);
  CHECK(Observed::instance().flush_count("sink") == 1);
}

TEST_CASE("a batch larger than max_in_flight does not deadlock: the stalled batch is flushed", "[runtime][batching]") {
  Observed::instance().reset();
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 50
[stage.sink]
use = "test_batch_sink"
input = "src"
batch = 32
)", fresh_folder("stall"), 4));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  std::size_t total = 0;
  for (const auto& s : Observed::instance().seen("sink")) {
    total += s.batch_size;
    CHECK(s.batch_size <= 4);  // never more than the admitted items
  }
  CHECK(total == 50);
  CHECK(result.peak_in_flight <= 4);
}

TEST_CASE("fan-out delivers every item to every consumer", "[runtime][fanout]") {
  Observed::instance().reset();
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 500
[stage.a]
use = "test_map"
input = "src"
[stage.b]
use = "test_map"
input = "src"
[stage.c]
use = "test_expand"
input = "src"
copies = 2
[stage.sink_c]
use = "test_sink"
input = "c"
[stage.join]
use = "test_sink"
inputs = ["a", "b"]
)", fresh_folder("fanout")));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  CHECK(Observed::instance().seen("a").size() == 500);
  CHECK(Observed::instance().seen("b").size() == 500);
  CHECK(Observed::instance().seen("join").size() == 1000);
  CHECK(Observed::instance().seen("sink_c").size() == 1000);
  std::set<std::string> unique;
  for (const auto& s : Observed::instance().seen("a")) unique.insert(s.item);
  CHECK(unique.size() == 500);
}

TEST_CASE("an ordered input sees source order despite parallel, jittered and dropping stages", "[runtime][ordering]") {
  Observed::instance().reset();
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 400
[stage.slow]
use = "test_map"
input = "src"
delay_us = 40
jitter = true
drop_every = 5
fail_every = 7
[stage.sink]
use = "test_ordered_sink"
input = "slow"
)", fresh_folder("ordering"), 32));
  const RunResult result = run_graph(spec, RunOptions{.threads = 4, .progress = ProgressMode::Off});
  REQUIRE(result.status == RunStatus::CompletedWithErrors);
  const auto seen = Observed::instance().seen("sink");
  std::vector<std::uint64_t> sequence;
  for (const auto& s : seen) sequence.push_back(s.sequence);
  CHECK(std::is_sorted(sequence.begin(), sequence.end()));
  std::size_t expected = 0;
  for (int i = 0; i < 400; ++i) expected += (i % 5 == 4 || i % 7 == 6) ? 0 : 1;
  CHECK(sequence.size() == expected);
  // The unordered stage really ran out of order: otherwise this test would prove nothing.
  const auto upstream = Observed::instance().seen("slow");
  std::vector<std::uint64_t> arrival;
  for (const auto& s : upstream) arrival.push_back(s.sequence);
  CHECK_FALSE(std::is_sorted(arrival.begin(), arrival.end()));
}

TEST_CASE("a failing item becomes an error record and the rest of the run continues", "[runtime][errors]") {
  Observed::instance().reset();
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 100
fail_at = 42
[stage.map]
use = "test_map"
input = "src"
fail_every = 10
[stage.sink]
use = "test_sink"
input = "map"
)", fresh_folder("errors")));
  const RunResult result = run_quietly(spec);
  CHECK(result.status == RunStatus::CompletedWithErrors);
  CHECK(result.exit_code() == 1);
  // 99 items generated (42 failed at the source); 10 of them fail in map (indices 9, 19, ... 99).
  CHECK(Observed::instance().seen("sink").size() == 99 - 10);
  REQUIRE(result.errors.size() == 11);
  std::size_t source_errors = 0;
  for (const auto& e : result.errors) {
    if (e.stage == "src") {
      ++source_errors;
      CHECK(e.message.find("item 42") != std::string::npos);
    } else {
      CHECK(e.stage == "map");
      CHECK(e.item.rfind("item-", 0) == 0);
      CHECK(e.message.find("cannot process item") != std::string::npos);
    }
  }
  CHECK(source_errors == 1);
  CHECK(Observed::instance().flush_count("sink") == 1);
}

TEST_CASE("the run summary and resolved graph land in the output folder", "[runtime][outputs]") {
  const auto out = fresh_folder("outputs");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 5
fail_at = 2
[stage.sink]
use = "test_sink"
input = "src"
)", out));
  run_quietly(spec);
  std::ifstream summary(out / "run_summary.json");
  std::stringstream text;
  text << summary.rdbuf();
  CHECK(text.str().find("\"status\": \"completed_with_errors\"") != std::string::npos);
  CHECK(text.str().find("source cannot read item 2") != std::string::npos);
  // The resolved graph is itself a valid graph with every default written out.
  std::ifstream resolved_file(out / "resolved_graph.toml");
  std::stringstream resolved;
  resolved << resolved_file.rdbuf();
  CHECK(resolved.str().find("delay_us = 0") != std::string::npos);
  const GraphSpec again = load_valid(resolved.str());
  CHECK(again.stages.size() == 2);
}

TEST_CASE("a fatal error stops the run cleanly without flushing", "[runtime][errors]") {
  Observed::instance().reset();
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 100000
[stage.boom]
use = "test_fatal"
input = "src"
at = 500
[stage.sink]
use = "test_sink"
input = "boom"
)", fresh_folder("fatal")));
  const RunResult result = run_quietly(spec);
  CHECK(result.status == RunStatus::Failed);
  CHECK(result.exit_code() == 1);
  CHECK(result.fatal_message.find("the model file vanished") != std::string::npos);
  CHECK(result.fatal_message.find("stage 'boom'") != std::string::npos);
  CHECK(Observed::instance().generated < 100000);
  CHECK(Observed::instance().flush_count("sink") == 0);
}

TEST_CASE("cancellation stops a long run promptly and leaves no complete-looking output", "[runtime][cancel]") {
  Observed::instance().reset();
  const auto out = fresh_folder("cancel");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 100000000
[stage.slow]
use = "test_map"
input = "src"
delay_us = 100
[stage.log]
use = "item_log"
input = "slow"
file = "items.tsv"
)", out));
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    while (Observed::instance().seen("slow").size() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    cancel = true;
  });
  RunOptions options;
  options.cancel = &cancel;
  const auto start = std::chrono::steady_clock::now();
  const RunResult result = run_quietly(spec, options);
  canceller.join();
  CHECK(result.status == RunStatus::Cancelled);
  CHECK(result.exit_code() == 130);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
  CHECK_FALSE(std::filesystem::exists(out / "items.tsv"));
  // No temporary is left behind either.
  for (const auto& entry : std::filesystem::directory_iterator(out))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("cancellation reaches long work at end of stream: the run stops within a step", "[runtime][cancel]") {
  Observed::instance().reset();
  Observed::instance().training_steps = 0;
  const auto out = fresh_folder("cancel-flush");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 10
[stage.train]
use = "test_trainer"
input = "src"
steps = 100000
)", out));
  std::atomic<bool> cancel{false}, run_ended{false};
  std::chrono::steady_clock::time_point cancelled_at;
  std::thread canceller([&] {
    while (Observed::instance().training_steps.load() < 50 && !run_ended.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    cancelled_at = std::chrono::steady_clock::now();
    cancel = true;
  });
  RunOptions options;
  options.cancel = &cancel;
  const RunResult result = run_quietly(spec, options);
  const auto stopped_at = std::chrono::steady_clock::now();
  run_ended = true;  // a run that ended before 50 steps fails the checks below instead of hanging the test
  canceller.join();
  CHECK(result.status == RunStatus::Cancelled);  // not failed, and no error record for the stage
  CHECK(result.errors.empty());
  CHECK(stopped_at - cancelled_at < std::chrono::seconds(2));  // 100 s of steps were left
  CHECK(Observed::instance().training_steps.load() < 100000);
}

TEST_CASE("a run cancelled before it starts (a signal while plugins load) ends cancelled and runs nothing", "[runtime][cancel]") {
  Observed::instance().reset();
  const auto out = fresh_folder("cancel-before");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 100
[stage.sink]
use = "test_sink"
input = "src"
)", out));
  std::atomic<bool> cancel{true};
  RunOptions options;
  options.cancel = &cancel;
  const RunResult result = run_quietly(spec, options);
  CHECK(result.status == RunStatus::Cancelled);  // not failed
  CHECK(result.fatal_message.empty());
  CHECK(Observed::instance().generated == 0);
  CHECK(std::filesystem::exists(out / "run_summary.json"));
}

TEST_CASE("the demo pipeline of core stages writes a complete, sorted CSV", "[runtime][core]") {
  const auto out = fresh_folder("core");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.tiles]
use = "synthetic_tiles"
count = 120
size = 32
background = 0.25
[stage.tissue]
use = "tissue_filter"
input = "tiles"
[stage.stats]
use = "color_stats"
input = "tissue"
batch = 16
[stage.csv]
use = "csv_writer"
input = "stats"
[stage.log]
use = "item_log"
input = "tissue"
)", out));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  const std::size_t kept = count_lines(out / "items.tsv");
  CHECK(kept > 60);
  CHECK(kept < 120);  // the background tiles were filtered out
  CHECK(count_lines(out / "features.csv") == kept + 1);
}

TEST_CASE("a stage that ends the input stops an endless source; the run completes and flushes", "[runtime][stream]") {
  Observed::instance().reset();
  const auto out = fresh_folder("end-sources");
  // count = 10^12 stands for endless: only the ender's request can end this run in time.
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 1000000000000
[stage.map]
use = "test_map"
input = "src"
[stage.train]
use = "test_ender"
input = "map"
stop_after = 50
)", out, 4));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  CHECK(result.sources_ended == "stage 'train' has seen 50 items");
  auto& observed = Observed::instance();
  // What was in flight when the request came still arrives (at most max_in_flight items, plus the one the
  // source was generating), and nothing is lost: everything generated reached the sink.
  CHECK(observed.generated >= 50);
  CHECK(observed.generated <= 50 + 4 + 1);
  CHECK(observed.seen("train").size() == static_cast<std::size_t>(observed.generated.load()));
  CHECK(observed.flush_count("train") == 1);
  CHECK(observed.in_flight == 0);
  std::ifstream summary(out / "run_summary.json");
  const std::string text((std::istreambuf_iterator<char>(summary)), std::istreambuf_iterator<char>());
  CHECK(text.find("\"input_ended_early\": \"stage 'train' has seen 50 items\"") != std::string::npos);
}

TEST_CASE("after: a stage waits for another stage's end, and opens the file that stage wrote", "[runtime][phases]") {
  Observed::instance().reset();
  const auto out = fresh_folder("phases");
  // The reader's file does not exist when the graph is validated: the writer's phase writes it.
  const std::string stages = R"(
[stage.reader]
use = "test_line_source"
file = "{output}/lines.txt"
after = "writer"
[stage.echo]
use = "test_map"
input = "reader"
[stage.sink]
use = "test_sink"
input = "echo"
[stage.src]
use = "test_source"
count = 7
[stage.writer]
use = "test_line_writer"
input = "src"
file = "{output}/lines.txt"
)";
  const GraphSpec spec = load_valid(graph_text(stages, out));
  REQUIRE(spec.phases == 2);
  CHECK(spec.stages[spec.find_stage("reader")].phase == 1);
  CHECK(spec.stages[spec.find_stage("sink")].phase == 1);  // downstream of a later stage: the same phase
  CHECK(spec.stages[spec.find_stage("src")].phase == 0);
  CHECK(spec.stages[spec.find_stage("reader")].params.at("file") == Value((out / "lines.txt").string()));
  const RunResult result = run_quietly(spec);
  REQUIRE(result.status == RunStatus::Completed);
  CHECK(Observed::instance().seen("sink").size() == 7);  // every line the first phase wrote
  CHECK(result.items_generated == 14);
  REQUIRE(result.stages.size() == 5);
  CHECK(result.stages.front().id == "src");  // phase by phase
  CHECK(result.stages.back().calls == 7);
  std::ifstream resolved(out / "resolved_graph.toml");
  const std::string text((std::istreambuf_iterator<char>(resolved)), std::istreambuf_iterator<char>());
  CHECK(text.find("after = [\"writer\"]") != std::string::npos);  // the resolved graph reruns the same way
  CHECK(std::filesystem::exists(out / "run_summary.json"));

  // A phase that fails ends the run before the next one opens.
  Observed::instance().reset();
  const auto failing = fresh_folder("phases-failing");
  const GraphSpec broken = load_valid(graph_text(R"(
[stage.src]
use = "test_source"
count = 3
[stage.stop]
use = "test_fatal"
input = "src"
[stage.later]
use = "test_source"
after = "stop"
[stage.sink]
use = "test_sink"
input = "later"
)", failing));
  const RunResult stopped = run_quietly(broken);
  CHECK(stopped.status == RunStatus::Failed);
  CHECK(stopped.fatal_message.rfind("phase 1: ", 0) == 0);
  CHECK(Observed::instance().seen("sink").empty());
}

TEST_CASE("after: unknown stages, cycles and packets across phases are errors before the run", "[runtime][phases][validation]") {
  const auto out = fresh_folder("phases-bad");
  const auto message_of = [&](const std::string& stages) {
    std::string all;
    for (const auto& d : diagnostics_of(graph_text(stages, out))) all += d.format() + "\n";
    return all;
  };
  CHECK_THAT(message_of("[stage.src]\nuse = \"test_source\"\nafter = \"sinc\"\n[stage.sink]\nuse = \"test_sink\"\ninput = \"src\"\n"),
             Catch::Contains("'after' names 'sinc', which is not a stage of the graph") && Catch::Contains("(did you mean 'sink'?)"));
  CHECK_THAT(message_of("[stage.src]\nuse = \"test_source\"\nafter = \"sink\"\n[stage.sink]\nuse = \"test_sink\"\ninput = \"src\"\n"),
             Catch::Contains("'after' makes a cycle"));
  CHECK_THAT(message_of("[stage.a]\nuse = \"test_source\"\n[stage.sa]\nuse = \"test_sink\"\ninput = \"a\"\n"
                        "[stage.b]\nuse = \"test_source\"\n[stage.late]\nuse = \"test_map\"\ninput = \"b\"\nafter = \"sa\"\n"
                        "[stage.sb]\nuse = \"test_sink\"\ninput = \"late\"\n"),
             Catch::Contains("runs in phase 2 ('after'), but its input 'b' in phase 1: packets do not cross phases; give 'b' the same 'after'"));
  CHECK_THAT(message_of("[stage.src]\nuse = \"test_source\"\nafter = 3\n[stage.sink]\nuse = \"test_sink\"\ninput = \"src\"\n"),
             Catch::Contains("'after' must be a stage name or a non-empty list of stage names"));
  // Without 'after', a missing file is still an error at validation.
  CHECK_THAT(message_of("[stage.src]\nuse = \"test_line_source\"\nfile = \"{output}/none.txt\"\n[stage.sink]\nuse = \"test_sink\"\ninput = \"src\"\n"),
             Catch::Contains("which does not exist"));
}
