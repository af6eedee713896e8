// Scale-out: shards of the source items, the extraction and evaluation stage sets, per-item locks between the
// processes that share an output folder, and the names of temporaries on a shared file system.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "histoflow/atomic_file.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/item_lock.hpp"
#include "histoflow/scale_out.hpp"
#include "support/graph_helpers.hpp"
#include "support/test_stages.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

// A per-item part (source -> resumable store -> sink) and a trainer that needs every item, with a second phase
// after it.
const char* kSplitGraph = R"(
[stage.src]
use = "test_shard_source"
count = 12
[stage.store]
use = "test_resumable"
input = "src"
done_every = 0
[stage.sink]
use = "test_sink"
input = "store"
release = false
[stage.train]
use = "test_trainer"
input = "store"
steps = 0
[stage.later_src]
use = "test_source"
count = 2
after = ["train"]
[stage.later_sink]
use = "test_sink"
input = "later_src"
release = false
)";

std::vector<std::string> ids_of(const GraphSpec& spec) {
  std::vector<std::string> ids;
  for (const auto& s : spec.stages) ids.push_back(s.id);
  return ids;
}

std::multiset<std::string> items_seen(const std::string& stage) {
  std::multiset<std::string> items;
  for (const auto& seen : Observed::instance().seen(stage)) items.insert(seen.item);
  return items;
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("shard and stage-set arguments are parsed and checked", "[scale_out]") {
  const RunShard shard = parse_shard("3/8");
  CHECK(shard.index == 3);
  CHECK(shard.count == 8);
  CHECK(shard.name() == "3-of-8");
  CHECK_FALSE(parse_shard("0/1").split());
  CHECK_THROWS_WITH(parse_shard("8/8"), Catch::Contains("I must be in [0, 7]"));
  CHECK_THROWS_WITH(parse_shard("1/0"), Catch::Contains("N must be in"));
  CHECK_THROWS_WITH(parse_shard("3"), Catch::Contains("expects I/N"));
  CHECK_THROWS_WITH(parse_shard("a/4"), Catch::Contains("expects I/N"));
  CHECK_THROWS_AS(parse_stage_set("extraction"), UsageError);
  CHECK(parse_stage_set("evaluate") == StageSet::Evaluate);
}

TEST_CASE("a Slurm array task's shard comes from SLURM_ARRAY_TASK_*", "[scale_out]") {
  CHECK_FALSE(shard_from_slurm({}).has_value());
  CHECK_FALSE(shard_from_slurm({{"SLURM_JOB_ID", "7"}}).has_value());
  auto shard = shard_from_slurm({{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"},
                                 {"SLURM_ARRAY_TASK_MIN", "3"}, {"SLURM_ARRAY_TASK_MAX", "6"}});
  REQUIRE(shard);
  CHECK(shard->index == 2);
  CHECK(shard->count == 4);
  // A task resubmitted alone (sbatch --array=2) is an array of one: the whole input, not shard 2 of some N.
  shard = shard_from_slurm({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "1"}, {"SLURM_ARRAY_TASK_MIN", "2"},
                            {"SLURM_ARRAY_TASK_MAX", "2"}});
  REQUIRE(shard);
  CHECK_FALSE(shard->split());
  CHECK_THROWS_WITH(shard_from_slurm({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "3"}, {"SLURM_ARRAY_TASK_MIN", "0"},
                                      {"SLURM_ARRAY_TASK_MAX", "4"}, {"SLURM_ARRAY_TASK_STEP", "2"}}),
                    Catch::Contains("pass --shard I/N"));
  CHECK_THROWS_WITH(shard_from_slurm({{"SLURM_ARRAY_TASK_ID", "x"}, {"SLURM_ARRAY_TASK_COUNT", "3"}}), Catch::Contains("not a whole number"));
}

TEST_CASE("the extraction stage set leaves out what needs every item, what runs after it and what feeds only it", "[scale_out]") {
  shared_loader();
  const GraphSpec spec = load_valid(graph_text(kSplitGraph, fresh_folder("stage-set")));
  std::vector<std::string> left_out;
  const GraphLoad extract = select_stage_set(spec, StageSet::Extract, &left_out);
  REQUIRE(extract.ok());
  auto kept = ids_of(extract.spec);
  std::sort(kept.begin(), kept.end());
  std::sort(left_out.begin(), left_out.end());
  CHECK(kept == std::vector<std::string>{"sink", "src", "store"});
  CHECK(left_out == std::vector<std::string>{"later_sink", "later_src", "train"});
  CHECK(extract.spec.phases == 1);
  CHECK(extract.spec.edges.size() == 2);
  CHECK(ids_of(select_stage_set(spec, StageSet::Evaluate).spec) == ids_of(spec));

  // A map whose only reader trains has nothing to do in the extraction, nor has its source: nothing is left.
  const GraphSpec only_training = load_valid(graph_text(R"(
[stage.src]
use = "test_shard_source"
[stage.map]
use = "test_map"
input = "src"
[stage.train]
use = "test_trainer"
input = "map"
)", fresh_folder("stage-set-empty")));
  left_out.clear();
  const GraphLoad nothing = select_stage_set(only_training, StageSet::Extract, &left_out);
  REQUIRE(nothing.diagnostics.size() == 1);
  CHECK_THAT(nothing.diagnostics[0].message, Catch::Contains("nothing to extract in shards"));
  CHECK(left_out.size() == 3);
}

TEST_CASE("a graph runs as a shard only without stages that need every item and with shardable sources", "[scale_out]") {
  shared_loader();
  const GraphSpec spec = load_valid(graph_text(kSplitGraph, fresh_folder("shardable")));
  CHECK(sharding_problems(spec, {}).empty());  // one process: anything goes
  const auto problems = sharding_problems(spec, {1, 3});
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].stage == "train");
  CHECK_THAT(problems[0].message, Catch::Contains("needs every item, and shard 1/3 has only some") &&
                                      Catch::Contains("--stage-set extract") && Catch::Contains("--stage-set evaluate"));
  CHECK(problems[1].stage == "later_src");
  CHECK_THAT(problems[1].message, Catch::Contains("cannot split its items into shards") && Catch::Contains("test_shard_source"));
  CHECK(problems[0].pos.line > 0);
  CHECK(sharding_problems(select_stage_set(spec, StageSet::Extract).spec, {1, 3}).empty());
}

TEST_CASE("shards of one output folder process every item once and keep their summaries apart", "[scale_out][runtime]") {
  shared_loader();
  const auto out = fresh_folder("shards");
  const GraphSpec extract = select_stage_set(load_valid(graph_text(kSplitGraph, out)), StageSet::Extract).spec;
  Observed::instance().reset();
  for (std::int64_t index = 0; index < 3; ++index) {
    RunOptions options;
    options.shard = {index, 3};
    options.summary_dir = out / "shards" / options.shard.name();
    const RunResult result = run_quietly(extract, options);
    REQUIRE(result.status == RunStatus::Completed);
    CHECK(result.items_generated == 4);
    const auto summary = read_text(options.summary_dir / "run_summary.json");
    CHECK_THAT(summary, Catch::Contains("\"count\": 3") && Catch::Contains("\"index\": " + std::to_string(index)));
    CHECK(read_text(options.summary_dir / "items-src.txt") ==
          "item-" + std::to_string(index) + "\nitem-" + std::to_string(index + 3) + "\nitem-" + std::to_string(index + 6) +
              "\nitem-" + std::to_string(index + 9) + "\n");
    CHECK(std::filesystem::exists(options.summary_dir / "resolved_graph.toml"));
  }
  const auto stored = items_seen("store");
  CHECK(stored.size() == 12);
  CHECK(std::set<std::string>(stored.begin(), stored.end()).size() == 12);
  CHECK_FALSE(std::filesystem::exists(out / "run_summary.json"));  // no shard wrote the whole run's summary
}

TEST_CASE("an item another process holds locked is left to it, without a gap in source order", "[scale_out][runtime]") {
  shared_loader();
  const auto out = fresh_folder("item-locks");
  // Eight items into a store that takes them in source order.
  const std::string chain = R"(
[stage.src]
use = "test_shard_source"
count = 8
[stage.store]
use = "test_ordered_resumable"
input = "src"
done_every = 0
)";
  const GraphSpec spec = load_valid(graph_text(chain + "[stage.sink]\nuse = \"test_sink\"\ninput = \"store\"\nrelease = false\n", out));
  Observed::instance().reset();
  {
    // Another open file description is another holder, as another process would be.
    auto held = ItemLock::try_acquire(item_lock_file(out / "locks", "src", "item-3"));
    REQUIRE(held);
    const RunResult result = run_quietly(spec);
    REQUIRE(result.status == RunStatus::Completed);
    const auto stored = items_seen("store");
    CHECK(stored.size() == 7);
    CHECK(stored.count("item-3") == 0);
    REQUIRE(result.warnings.size() == 1);
    CHECK(result.warnings[0].item == "item-3");
    CHECK_THAT(result.warnings[0].message, Catch::Contains("left to another process") && Catch::Contains("pid " + std::to_string(::getpid())));
    CHECK(result.stages[0].left_to_others == 1);
  }
  {
    // With a stage that needs every item behind it, the run does not go on without the item: it fails, naming both.
    const GraphSpec needing_all = load_valid(graph_text(chain + "[stage.train]\nuse = \"test_trainer\"\ninput = \"store\"\nsteps = 0\n", out));
    auto held = ItemLock::try_acquire(item_lock_file(out / "locks", "src", "item-5"));
    REQUIRE(held);
    const RunResult failed = run_quietly(needing_all);
    CHECK(failed.status == RunStatus::Failed);
    CHECK_THAT(failed.fatal_message, Catch::Contains("item 'item-5' is being computed by another process") &&
                                         Catch::Contains("stage 'train' (test_trainer) needs every item"));
  }
  Observed::instance().reset();
  const RunResult again = run_quietly(spec);  // the holder is gone: the item is this run's
  REQUIRE(again.status == RunStatus::Completed);
  CHECK(items_seen("store").size() == 8);
  CHECK(again.warnings.empty());
}

TEST_CASE("an item lock dies with its holder, even one killed with SIGKILL", "[scale_out]") {
  const auto folder = fresh_folder("lock-holder");
  const auto file = item_lock_file(folder, "slides", "slide/7 a");
  CHECK(file.filename().string().rfind("slide_7_a-", 0) == 0);
  CHECK(file.parent_path() == folder / "slides");
  const auto long_id = item_lock_file(folder, "slides", std::string(300, 'x')), other = item_lock_file(folder, "slides", std::string(301, 'x'));
  CHECK(long_id.filename().string().size() < 128);
  CHECK(long_id != other);
  std::filesystem::create_directories(file.parent_path());
  const std::string path = file.string();
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // only system calls after fork: lock, say so, wait to be killed
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    struct flock request {};
    request.l_type = F_WRLCK;
    const bool locked = fd >= 0 && ::fcntl(fd, F_OFD_SETLK, &request) == 0;
    const char byte = locked ? 'y' : 'n';
    [[maybe_unused]] const auto written = ::write(ready[1], &byte, 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  CHECK(byte == 'y');
  std::string holder;
  CHECK_FALSE(ItemLock::try_acquire(file, &holder).has_value());
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(ItemLock::try_acquire(file).has_value());
}

TEST_CASE("temporaries name their host: another machine's count as in use, a dead process's here do not", "[scale_out][cache]") {
  CHECK_THAT(temp_name_suffix("s"), Catch::StartsWith(std::string(kTempMarker) + std::to_string(::getpid()) + "-" + this_host() + "-s"));
  const auto root = fresh_folder("temp-hosts");
  std::filesystem::create_directories(root / "lineage");
  std::ofstream(root / "lineage" / ("a.h5" + std::string(kTempMarker) + "2147483640-" + this_host() + "-0")) << "x";
  std::ofstream(root / "lineage" / ("b.h5" + std::string(kTempMarker) + "2147483640-another_node-s3")) << "x";
  const CacheScan scan = scan_cache(root);
  REQUIRE(scan.temporaries.size() == 2);
  CHECK_FALSE(scan.temporaries[0].writer_alive);
  CHECK(scan.temporaries[1].writer_alive);
}

TEST_CASE("a graph's slurm table sets the jobs' resources, its evaluate table the evaluation's", "[scale_out][validation]") {
  shared_loader();
  const auto out = fresh_folder("slurm-table");
  const std::string stages = R"(
[slurm]
shards = 16
parallel = 4
partition = "gpu"
cpus = 8
memory = "32G"
gpus = 1
time = 04:00:00
sbatch_options = ["--qos=high"]
[slurm.evaluate]
gpus = 0
time = "1-00:00:00"
[stage.src]
use = "test_shard_source"
[stage.sink]
use = "test_sink"
input = "src"
)";
  const GraphSpec spec = load_valid(graph_text(stages, out));
  CHECK(spec.slurm.shards == 16);
  CHECK(spec.slurm.parallel == 4);
  CHECK(spec.slurm.extract.partition == "gpu");
  CHECK(spec.slurm.extract.gpus == 1);
  CHECK(spec.slurm.extract.time == "04:00:00");  // a TOML time, unquoted
  CHECK(spec.slurm.evaluate.partition == "gpu");  // left out: the extraction's
  CHECK(spec.slurm.evaluate.cpus == 8);
  CHECK(spec.slurm.evaluate.gpus == 0);
  CHECK(spec.slurm.evaluate.time == "1-00:00:00");
  CHECK(spec.slurm.evaluate.sbatch_options == std::vector<std::string>{"--qos=high"});
  CHECK_THAT(expanded_graph_toml(spec), Catch::Contains("[slurm]\nshards = 16\nparallel = 4\npartition = \"gpu\"") &&
                                            Catch::Contains("[slurm.evaluate]"));

  const auto diagnostics = diagnostics_of(graph_text(R"(
[slurm]
shard = 4
cpus = 0
memory = "32 G"
[stage.src]
use = "test_shard_source"
[stage.sink]
use = "test_sink"
input = "src"
)", out));
  REQUIRE(diagnostics.size() == 3);
  CHECK_THAT(diagnostics[0].format(), Catch::Contains("unknown key 'shard' in [slurm] (did you mean 'shards'?)"));
  CHECK_THAT(diagnostics[1].format(), Catch::Contains("slurm.cpus must be an integer in [1, 4096]"));
  CHECK_THAT(diagnostics[2].format(), Catch::Contains("slurm.memory must be a non-empty string without spaces"));
  CHECK(diagnostics[1].pos.line > 0);
}
