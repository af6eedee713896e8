#pragma once
// Graph files: parsing, overrides and validation into a GraphSpec the runtime can build.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "histoflow/contract.hpp"
#include "histoflow/stage.hpp"
#include "histoflow/value.hpp"

namespace histoflow {

class PluginLoader;

struct SourcePos {
  std::string file;  // graph file path, or the `--set ...` argument an override came from
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;
};

struct Diagnostic {
  SourcePos pos;
  std::string stage;    // stage id, empty for graph-level problems
  std::string message;
  bool whole_template = false;  // `stage` names a template: the problem is the same for every instance
  std::string format() const;  // "file:line:col: error: stage 'x': message" ("template 'x': " when whole)
};

struct InputRef {
  std::string stage;
  std::string port;  // empty: the stage's first output
  SourcePos pos;
};

struct StageSpec {
  std::string id;
  std::string type;
  SourcePos pos;
  std::vector<InputRef> inputs;
  bool input_key_given = false;              // 'input' or 'inputs' was written, even if malformed
  std::map<std::string, Value> params;       // every declared parameter, defaults filled in
  std::map<std::string, SourcePos> param_pos;
  const StageContract* contract = nullptr;
  // A stage made by a [template.<name>] table: the template and its variables' values for this instance.
  std::string template_name;
  std::vector<std::pair<std::string, std::string>> template_values;
  // `after = ["finetune"]`: the stage (and whatever reads from it) runs in a later phase than these stages,
  // once they have finished, so it can open what they wrote. Phases run one after the other, in one run.
  std::vector<std::string> after;
  SourcePos after_pos;
  std::size_t phase = 0;  // set by validation: 0 for stages that wait for nothing
};

struct Edge {
  std::size_t from = 0;       // stage index
  std::size_t from_port = 0;
  std::size_t to = 0;
  std::size_t to_port = 0;
};

struct RunSettings {
  std::int64_t max_in_flight = 16;  // source items admitted and not yet retired
  std::int64_t max_tiles_in_flight = 256;  // packets on gated outputs admitted and not yet retired
  std::int64_t threads = 0;         // 0: all cores
  bool report = false;              // write OUTPUT/report.html when the run ends (flowrun report)
};

// What one Slurm job asks for (`flowrun submit --slurm`); empty or 0: Slurm's default, the option is not written.
struct SlurmResources {
  std::string partition;
  std::string account;
  std::string time;     // "HH:MM:SS" or "D-HH:MM:SS", as sbatch --time
  std::string memory;   // "16G", as sbatch --mem
  std::int64_t cpus = 0;  // --cpus-per-task (flowrun --threads too)
  std::int64_t gpus = 0;  // --gpus-per-task... written as --gres=gpu:N
  std::vector<std::string> sbatch_options;  // further options as sbatch takes them: "--qos=high", "--constraint=a100"
};

// [slurm]: the array job of the extraction (`shards` tasks, at most `parallel` at once) and [slurm.evaluate], the
// evaluation job after it (each value it leaves out is the extraction's). Flags of `flowrun submit` override both.
struct SlurmSettings {
  std::int64_t shards = 0;    // 0: not set (flowrun submit needs --shards then)
  std::int64_t parallel = 0;  // 0: no limit (--array=0-N-1 without %K)
  SlurmResources extract;
  SlurmResources evaluate;  // filled with extract's values where the graph left them out
};

struct GraphSpec {
  std::filesystem::path file;
  ExperimentInfo experiment;
  RunSettings run;
  SlurmSettings slurm;
  std::vector<std::filesystem::path> plugin_paths;
  std::vector<StageSpec> stages;          // in file order
  std::vector<Edge> edges;
  std::vector<std::size_t> topo_order;    // sources first
  std::size_t phases = 1;                 // stages of phase k run after every stage of phases < k has finished
  std::size_t find_stage(const std::string& id) const;  // npos when absent
};

struct GraphLoad {
  GraphSpec spec;
  std::vector<Diagnostic> diagnostics;  // all problems found, sorted by position
  bool ok() const { return diagnostics.empty(); }
};

struct Override {
  std::string key;    // "stage.param", "experiment.name", "run.max_in_flight", "slurm.time"
  std::string value;  // TOML value text; a bare word is taken as a string
  std::string origin; // the argument as the user wrote it, for error messages
};
Override parse_override(const std::string& argument);  // throws UsageError on "k=v" shape errors

// Parses the file, applies overrides, loads `[plugins] path` through `loader`, then validates everything.
GraphLoad load_graph(const std::filesystem::path& file, const std::vector<Override>& overrides, PluginLoader& loader);
// How much to check: everything, or each stage on its own (the stage harness has no edges).
enum class Validation { Full, StagesOnly };

// The same from text (tests and the stage harness); `file_name` is used in diagnostics and to resolve paths.
GraphLoad load_graph_text(const std::string& text, const std::filesystem::path& file_name,
                          const std::vector<Override>& overrides, PluginLoader& loader,
                          Validation validation = Validation::Full);

// The fully resolved graph (all defaults filled in) as TOML, for reproducibility.
std::string resolved_graph_toml(const GraphSpec& spec);
// The graph as written, with every template expanded into its stages (`flowrun graph --expand`): parameters
// that were written (paths resolved), no defaults. It validates to the same graph.
std::string expanded_graph_toml(const GraphSpec& spec);
// Graphviz rendering of the graph.
std::string graph_to_dot(const GraphSpec& spec);

}  // namespace histoflow
