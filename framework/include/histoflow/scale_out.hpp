#pragma once
// Splitting one graph's work over many processes (a Slurm array, several machines on a shared file system):
// shards of the source items, and the two stage sets a cluster runs one after the other, the per-item
// extraction (in shards) and the evaluation that needs every item (once, after them). docs/scale-out.md.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "histoflow/graph.hpp"
#include "histoflow/stage.hpp"

namespace histoflow {

enum class StageSet { All, Extract, Evaluate };

// "all", "extract" or "evaluate"; throws UsageError otherwise.
StageSet parse_stage_set(const std::string& text);

// "I/N" with 0 <= I < N; throws UsageError with what is wrong.
RunShard parse_shard(const std::string& text);

// A Slurm array task's shard: index SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, from
// `environment` (the process's variables). None outside an array. Throws UsageError for values that do not fit:
// `--array` with a step or a list that is not 0..N-1 cannot be mapped to shards.
std::optional<RunShard> shard_from_slurm(const std::map<std::string, std::string>& environment);

// The graph restricted to a stage set. Extract: every stage except those that need every item
// (StageContract::needs_every_item), what reads from them or runs after them (`after`), and what then feeds
// nothing that is left. Evaluate and All: the whole graph (the evaluation restores what the shards wrote and
// computes what they left). Names the stages left out in `left_out`; diagnostics when nothing is left.
GraphLoad select_stage_set(const GraphSpec& spec, StageSet set, std::vector<std::string>* left_out = nullptr);

// Why `spec` cannot run as one shard of several: a stage that needs every item, a source that cannot take a
// shard. Empty when it can (or when `shard` is the whole input).
std::vector<Diagnostic> sharding_problems(const GraphSpec& spec, const RunShard& shard);

// A value that goes into an #SBATCH line as it is ([slurm] table, flowrun submit's flags): one non-empty word, no
// quotes, no shell characters.
bool is_sbatch_word(const std::string& text);

}  // namespace histoflow
