#pragma once
// Runs a validated graph on a oneTBB flow graph.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "histoflow/errors.hpp"
#include "histoflow/graph.hpp"

namespace histoflow {

enum class ProgressMode { Auto, Bar, Lines, Off };

struct RunOptions {
  std::optional<std::int64_t> threads;      // overrides [run] threads
  std::filesystem::path trace_file;          // empty: tracing off
  ProgressMode progress = ProgressMode::Auto;
  std::chrono::milliseconds progress_interval{10000};  // for plain lines
  const std::atomic<bool>* cancel = nullptr; // set to true (e.g. by SIGINT) to cancel cleanly
  bool write_outputs = true;                 // run summary and resolved graph into the output folder
  // Where the run summary, the resolved graph and a shard's item list go; empty: the experiment's output folder.
  // A sharded run uses <output>/shards/<I>-of-<N>, so that concurrent shards never write the same file.
  std::filesystem::path summary_dir;
  RunShard shard;                            // handed to every stage; shardable sources emit only its items
  // Fault injection for tests: called before each stage is created ("create") and opened ("open"); what it
  // throws is handled exactly as if the stage's constructor or open() had thrown it.
  std::function<void(const StageSpec&, std::string_view phase)> before_stage_phase;
};

enum class RunStatus { Completed, CompletedWithErrors, Failed, Cancelled };

struct StageStats {
  std::string id;
  std::uint64_t calls = 0;
  std::uint64_t errors = 0;
  double busy_seconds = 0;
  std::uint64_t restored = 0;  // resumable stages: items whose results existed and were restored
  std::uint64_t skipped = 0;   // inputs skipped because only restored results depended on them
  double open_seconds = 0;     // construction and open() (model loading), before any item moved
  std::uint64_t left_to_others = 0;  // sources: items another process (a shard, a rerun) was working on
};

// A file or folder a stage wrote for the user to open (Stage::results()).
struct ResultFile {
  std::string stage;
  std::string what;
  std::filesystem::path path;
};

struct RunResult {
  RunStatus status = RunStatus::Completed;
  std::string fatal_message;            // for Failed
  std::string sources_ended;            // why a stage ended the input early (StreamControl), empty otherwise
  std::vector<ErrorRecord> errors;      // per-item error records
  std::vector<ErrorRecord> warnings;    // tolerated losses (ErrorLog::warn): reported, not errors
  std::uint64_t items_generated = 0;    // source items
  std::uint64_t items_retired = 0;
  std::int64_t peak_in_flight = 0;      // highest number of source items admitted and not retired
  std::int64_t peak_tiles_in_flight = 0;  // the same for packets on gated outputs
  double wall_seconds = 0;
  double peak_rss_mb = 0;               // the process's peak resident memory when the run ended
  std::vector<StageStats> stages;
  std::vector<ResultFile> results;      // the stages' main result files, in graph order
  int exit_code() const;                // 0, 1 (item errors or failure), 130 (cancelled)
};

RunResult run_graph(const GraphSpec& spec, const RunOptions& options);

// Where a run writes run_summary.json and resolved_graph.toml: options.summary_dir, else the output folder.
std::filesystem::path summary_folder(const GraphSpec& spec, const RunOptions& options);

std::string format_run_summary(const RunResult& result);

}  // namespace histoflow
