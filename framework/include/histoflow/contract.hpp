#pragma once
// A stage's contract: declared once, read by validation, `flowrun describe` and the runtime.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "histoflow/value.hpp"

namespace histoflow {

inline constexpr const char* kAnyKind = "any";  // an input port of this kind accepts every packet kind

struct PortSpec {
  std::string name;
  std::string kind;   // packet kind carried on this port
  std::string doc;
  // Inputs: deliver packets in source order (the path from the source must be one-to-one).
  bool ordered = false;
  // Outputs: the graph may leave this output unconsumed without an error.
  bool may_be_unused = false;
  // Outputs: every packet is admitted under the graph's tile budget ([run] max_tiles_in_flight) before it
  // reaches the next stage, so a stage that expands one item into thousands (a slide into its tiles)
  // cannot flood memory. Packets wait, cheaply, in emission order until admitted.
  bool gated = false;
  // Inputs: the graph may leave this port unconnected (only trailing ports can be optional).
  bool optional = false;
};

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::String;
  std::string doc;
  bool required = false;
  Value default_value;                 // monostate when required or when "unset" is meaningful
  std::optional<double> min;           // inclusive, for Int and Float
  std::optional<double> max;
  std::vector<std::string> choices;    // for String: the allowed spellings
  // For String: choices known only once every plugin is loaded (e.g. backbones that plugins add). Called at
  // validation and by `flowrun describe`; takes precedence over `choices`.
  std::function<std::vector<std::string>()> dynamic_choices;
  // Whether the value changes what the stage computes. Only such parameters enter the stage's lineage (the
  // identity of its outputs, which resumable stages key their results by); threads or batch sizes do not.
  bool affects_output = true;
  std::vector<std::string> allowed() const { return dynamic_choices ? dynamic_choices() : choices; }
};

// "[1, 65536]", ">= 0" or "<= 1"; empty when the parameter has no range.
std::string param_range_text(const ParamSpec& spec);

// What a contract rule sees of one stage of a graph being validated: its parameters (defaults filled in)
// and which of its input ports are connected. It reports problems against the line of a parameter.
class RuleCheck {
 public:
  virtual ~RuleCheck() = default;
  virtual const Value& param(const std::string& name) const = 0;  // monostate when unset
  virtual bool was_written(const std::string& name) const = 0;    // in the file or by --set (not a default)
  virtual bool input_connected(std::size_t port) const = 0;      // true when validation has no edges (harness)
  // True for a path inside the run's output folder when the stage runs after an earlier phase ('after'): a file
  // that phase writes, which cannot exist yet when the graph is validated. The stage checks it when it opens.
  virtual bool written_by_earlier_phase(const std::string& /*path*/) const { return false; }
  // Reports at the parameter's line (its stage header when it was not written); `param` may be "".
  virtual void error(const std::string& param, std::string message) = 0;
};

// A condition involving several parameters and ports, or the world outside the graph (a file that must
// exist), checked by `flowrun validate` before any work starts, and listed by `flowrun describe`.
struct ContractRule {
  std::string doc;  // one line: "exactly one of weights and synthetic_weights"
  std::function<void(RuleCheck&)> check;
};

// Common rules.
ContractRule rule_exactly_one_of(std::string first, std::string second);  // each a non-empty text or a true flag
// When set: the file or folder exists now, or (for a stage of a later phase) lies in the output folder, where an
// earlier phase writes it.
ContractRule rule_file_exists(std::string path_param);
ContractRule rule_input_required_when(std::size_t port, std::string port_name, std::string param, std::string value);

enum class Concurrency : std::uint8_t { Serial, Limited, Unlimited };

// How many output packets one input produces: the runtime checks it and relies on it for ordering.
enum class Cardinality : std::uint8_t { OneToOne, OneToMany };

struct StageContract {
  std::string type;       // the name used in `use = "..."`
  std::string summary;    // one line
  std::string doc;        // longer description
  std::vector<PortSpec> inputs;   // empty: a source
  std::vector<PortSpec> outputs;  // empty: a sink
  std::vector<ParamSpec> params;
  std::vector<ContractRule> rules;  // conditions across parameters and ports, checked at validation
  Concurrency concurrency = Concurrency::Serial;
  int max_concurrency = 1;        // for Concurrency::Limited
  Cardinality cardinality = Cardinality::OneToMany;
  // Batched stages receive packets whose `members` are up to `batch` input packets; the framework builds
  // the batches (a `batch` parameter is added to the contract) and flushes the last partial one.
  bool batched = false;
  std::int64_t default_batch = 32;
  // Resumable stages keep their results across runs and implement Stage::restore; the run then skips, for
  // items whose results exist, every upstream stage that works only for them.
  bool resumable = false;
  // The stage's result depends on every source item (training, a table over the cohort, one file listing every
  // item): a run split into shards (`flowrun run --shard I/N`) cannot include it. It belongs to the evaluation
  // stage set, which runs once after the shards (`--stage-set evaluate`, docs/scale-out.md).
  bool needs_every_item = false;
  // Sources: the stage takes a shard (StageContext::shard) and emits only that shard's items, so that N processes
  // together emit every item once. Their items are also locked while in flight (one process works on each).
  bool shardable = false;
  std::string example;            // a TOML snippet shown by `flowrun describe`
  std::string plugin_file;        // filled by the registry: the library that registered it

  bool is_source() const { return inputs.empty(); }
  bool is_sink() const { return outputs.empty(); }
  const ParamSpec* find_param(const std::string& name) const;
  const PortSpec* find_output(const std::string& name) const;
};

// Builder helpers keep plugin contracts short and readable.
ParamSpec param_int(std::string name, std::int64_t def, std::string doc, std::optional<double> min = {},
                    std::optional<double> max = {});
ParamSpec param_float(std::string name, double def, std::string doc, std::optional<double> min = {},
                      std::optional<double> max = {});
ParamSpec param_bool(std::string name, bool def, std::string doc);
ParamSpec param_string(std::string name, std::string def, std::string doc, std::vector<std::string> choices = {});
ParamSpec param_required(std::string name, ParamType type, std::string doc);
// An optional path without a default: unset (monostate) unless the graph writes it.
ParamSpec param_path(std::string name, std::string doc);
ParamSpec param_string_list(std::string name, std::vector<std::string> def, std::string doc);
ParamSpec param_float_list(std::string name, std::vector<double> def, std::string doc);
ParamSpec not_affecting_output(ParamSpec spec);  // marks a parameter such as threads or batch

}  // namespace histoflow
