#pragma once
// The files a scaled-out experiment keeps in its output folder, written by `flowrun run --shard`, `flowrun submit`
// and read by `flowrun status`:
//   shards/<I>-of-<N>/run_started.json   who runs the shard (pid, host, Slurm job), written when it starts
//   shards/<I>-of-<N>/run_summary.json   how it ended (the run summary); older than run_started: not ended yet
//   shards/<I>-of-<N>/items-<source>.txt the shard's items, one id per line, written before any moves
//   slurm/extract.sbatch, evaluate.sbatch, jobs.json, logs/   written by `flowrun submit --slurm`
#include <filesystem>
#include <string>

#include "histoflow/graph.hpp"
#include "histoflow/runtime.hpp"

namespace histoflow::cli {

std::filesystem::path shard_folder(const std::filesystem::path& output_dir, const RunShard& shard);
std::filesystem::path slurm_folder(const std::filesystem::path& output_dir);

// The shard of a Slurm array task (SLURM_ARRAY_TASK_*), or the whole input outside one. Says so on stderr.
RunShard shard_of_this_task();

// run_started.json in `folder`: pid, host, start time, and the Slurm job and array task when there is one.
void record_run_start(const std::filesystem::path& folder);

}  // namespace histoflow::cli
