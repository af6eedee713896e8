// Shards and stage sets: how one graph's work is split over the processes of a cluster (scale_out.hpp).
#include "histoflow/scale_out.hpp"

#include <algorithm>
#include <charconv>

#include "histoflow/errors.hpp"
#include "histoflow/registry.hpp"
#include "validate_structure.hpp"

namespace histoflow {
namespace {

std::optional<std::int64_t> whole_number(const std::string& text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A stage whose own work is a result (it writes files): a sink, or a resumable store whose consumers are optional.
bool works_for_itself(const StageSpec& stage) { return stage.contract->is_sink() || stage.contract->resumable; }

}  // namespace

bool is_sbatch_word(const std::string& text) { return !text.empty() && text.find_first_of(" \t\n'\"\\$`") == std::string::npos; }

StageSet parse_stage_set(const std::string& text) {
  if (text == "all") return StageSet::All;
  if (text == "extract") return StageSet::Extract;
  if (text == "evaluate") return StageSet::Evaluate;
  throw UsageError("--stage-set must be extract, evaluate or all, not '" + text + "'");
}

RunShard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  const auto index = slash == std::string::npos ? std::nullopt : whole_number(text.substr(0, slash));
  const auto count = slash == std::string::npos ? std::nullopt : whole_number(text.substr(slash + 1));
  if (!index || !count) throw UsageError("--shard expects I/N (shard I of N, counted from 0), like 3/8; got '" + text + "'");
  if (*count < 1 || *count > 1'000'000) throw UsageError("--shard " + text + ": N must be in [1, 1000000]");
  if (*index < 0 || *index >= *count)
    throw UsageError("--shard " + text + ": I must be in [0, " + std::to_string(*count - 1) + "] (shards are counted from 0)");
  return {*index, *count};
}

std::optional<RunShard> shard_from_slurm(const std::map<std::string, std::string>& environment) {
  const auto get = [&](const char* name) -> std::optional<std::int64_t> {
    const auto it = environment.find(name);
    if (it == environment.end() || it->second.empty()) return std::nullopt;
    const auto value = whole_number(it->second);
    if (!value) throw UsageError(std::string(name) + "='" + it->second + "' is not a whole number");
    return value;
  };
  const auto id = get("SLURM_ARRAY_TASK_ID");
  const auto count = get("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return std::nullopt;
  const std::int64_t min = get("SLURM_ARRAY_TASK_MIN").value_or(0);
  const std::int64_t max = get("SLURM_ARRAY_TASK_MAX").value_or(min + *count - 1);
  const std::int64_t step = get("SLURM_ARRAY_TASK_STEP").value_or(1);
  if (step != 1 || max - min + 1 != *count)
    throw UsageError("the Slurm array (tasks " + std::to_string(min) + ".." + std::to_string(max) + ", step " + std::to_string(step) +
                     ", " + std::to_string(*count) + " tasks) is not one range of consecutive tasks: pass --shard I/N");
  if (*id < min || *id > max) throw UsageError("SLURM_ARRAY_TASK_ID=" + std::to_string(*id) + " is outside the array's range");
  return RunShard{*id - min, *count};
}

GraphLoad select_stage_set(const GraphSpec& spec, StageSet set, std::vector<std::string>* left_out) {
  GraphLoad load;
  load.spec = spec;
  if (set != StageSet::Extract) return load;

  const std::size_t n = spec.stages.size();
  std::vector<bool> dropped(n, false);
  for (std::size_t i = 0; i < n; ++i) dropped[i] = spec.stages[i].contract->needs_every_item;
  // What reads from a dropped stage, or waits for one, goes with it.
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (dropped[i]) continue;
      bool goes = std::any_of(spec.edges.begin(), spec.edges.end(), [&](const Edge& e) { return e.to == i && dropped[e.from]; });
      for (const auto& id : spec.stages[i].after) goes = goes || dropped[spec.find_stage(id)];
      if (goes) dropped[i] = changed = true;
    }
  }
  // What then feeds nothing that is left, and writes nothing itself, has no work in this set.
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (dropped[i] || works_for_itself(spec.stages[i])) continue;
      const bool had_consumers = std::any_of(spec.edges.begin(), spec.edges.end(), [&](const Edge& e) { return e.from == i; });
      const bool feeds_kept = std::any_of(spec.edges.begin(), spec.edges.end(), [&](const Edge& e) { return e.from == i && !dropped[e.to]; });
      if (had_consumers && !feeds_kept) dropped[i] = changed = true;
    }
  }

  load.spec.stages.clear();
  for (std::size_t i = 0; i < n; ++i) {
    if (!dropped[i]) load.spec.stages.push_back(spec.stages[i]);
    else if (left_out) left_out->push_back(spec.stages[i].id);
  }
  if (load.spec.stages.empty()) {
    load.diagnostics.push_back({{spec.file.string(), 1, 1}, "",
                                "--stage-set extract: every stage needs every item or feeds one that does, so there is nothing to "
                                "extract in shards; run the graph whole"});
    return load;
  }
  load.spec.edges.clear();
  load.spec.topo_order.clear();
  load.spec.phases = 1;
  // Outputs whose readers were left out are left unconsumed: their packets go nowhere.
  detail::validate_structure(load.spec, load.diagnostics, /*require_consumed_outputs=*/false);
  return load;
}

std::vector<Diagnostic> sharding_problems(const GraphSpec& spec, const RunShard& shard) {
  std::vector<Diagnostic> problems;
  if (!shard.split()) return problems;
  std::string shardable;
  for (const auto& type : Registry::instance().types())
    if (const StageContract* c = Registry::instance().find(type); c && c->is_source() && c->shardable)
      shardable += (shardable.empty() ? "" : ", ") + type;
  const std::string which = "shard " + std::to_string(shard.index) + "/" + std::to_string(shard.count);
  for (const auto& stage : spec.stages) {
    if (stage.contract->needs_every_item)
      problems.push_back({stage.pos, stage.id,
                          "stage '" + stage.id + "' (" + stage.type + ") needs every item, and " + which +
                              " has only some: run the shards with --stage-set extract and this stage once, after them, with "
                              "--stage-set evaluate (docs/scale-out.md)"});
    else if (stage.contract->is_source() && !stage.contract->shardable)
      problems.push_back({stage.pos, stage.id,
                          "source '" + stage.id + "' (" + stage.type + ") cannot split its items into shards; sources that can: " +
                              (shardable.empty() ? "none loaded" : shardable)});
  }
  std::stable_sort(problems.begin(), problems.end(), [](const Diagnostic& a, const Diagnostic& b) { return a.pos.line < b.pos.line; });
  return problems;
}

}  // namespace histoflow
