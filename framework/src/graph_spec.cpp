// Graph files: TOML in, GraphSpec and every diagnostic out.
#include <toml++/toml.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "histoflow/errors.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/input_limits.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"
#include "nearest_name.hpp"
#include "histoflow/scale_out.hpp"
#include "validate_structure.hpp"

namespace histoflow {

std::string Diagnostic::format() const {
  std::string text = pos.file;
  if (pos.line > 0) text += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  text += ": error: ";
  if (!stage.empty()) text += (whole_template ? "template '" : "stage '") + stage + "': ";
  return text + message;
}

std::size_t GraphSpec::find_stage(const std::string& id) const {
  for (std::size_t i = 0; i < stages.size(); ++i)
    if (stages[i].id == id) return i;
  return std::string::npos;
}

Override parse_override(const std::string& argument) {
  const auto eq = argument.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("--set expects KEY=VALUE (for example encode.batch=64), got '" + argument + "'");
  Override o{argument.substr(0, eq), argument.substr(eq + 1), "--set " + argument};
  if (o.key.find('.') == std::string::npos)
    throw UsageError("--set key '" + o.key + "' must name a table and a key, like stage_id.param or experiment.seed");
  return o;
}

namespace {

constexpr const char* kOverridePrefix = "--set ";

SourcePos pos_of(const toml::source_region& region, const std::string& fallback_file) {
  SourcePos pos;
  pos.file = region.path ? std::string(*region.path) : fallback_file;
  if (pos.file.rfind(kOverridePrefix, 0) == 0) return pos;  // an override has no line in the file
  pos.line = static_cast<int>(region.begin.line);
  pos.column = static_cast<int>(region.begin.column);
  return pos;
}

const char* node_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time: return "a date/time";
    default: return "nothing";
  }
}

class GraphReader {
 public:
  GraphReader(std::filesystem::path file, std::vector<Diagnostic>& diagnostics)
      : file_(std::move(file)), file_name_(file_.string()), diagnostics_(diagnostics) {}

  void error(const toml::source_region& region, const std::string& stage, std::string message) {
    diagnostics_.push_back({pos_of(region, file_name_), stage, std::move(message)});
  }

  // Values set with --set are reported against the argument, not against a line of the file.
  void set_override_origins(std::map<std::string, std::string> origins) { override_origins_ = std::move(origins); }
  void error_at(const toml::node& node, const std::string& dotted_key, std::string message) {
    diagnostics_.push_back({where(node, dotted_key), "", std::move(message)});
  }
  SourcePos where(const toml::node& node, const std::string& dotted_key) const {
    if (auto it = override_origins_.find(dotted_key); it != override_origins_.end()) return {it->second, 0, 0};
    return pos_of(node.source(), file_name_);
  }
  // For a key: its own position in the file, or the --set argument that wrote it.
  SourcePos where(const toml::key& key, const toml::node& value, const std::string& dotted_key) const {
    if (override_origins_.count(dotted_key)) return where(value, dotted_key);
    return pos_of(key.source(), file_name_);
  }

  // Relative to the graph file; a leading "{output}" is the experiment's output folder (what an earlier phase
  // wrote: `weights = "{output}/finetune/export/teacher_backbone.safetensors"`).
  std::filesystem::path resolve(const std::string& path) const {
    if (path.empty()) return {};  // no path: `--set encode.weights=` clears a graph's weights file
    if (path.rfind(kOutputVariable, 0) == 0) {
      std::string rest = path.substr(std::string_view(kOutputVariable).size());
      while (!rest.empty() && rest.front() == '/') rest.erase(0, 1);
      return (output_dir_ / rest).lexically_normal();
    }
    std::filesystem::path p(path);
    if (p.is_absolute()) return p.lexically_normal();
    return (std::filesystem::absolute(file_).parent_path() / p).lexically_normal();
  }

  // Unknown keys in a fixed-shape table.
  void check_keys(const toml::table& table, const std::vector<std::string>& allowed, const std::string& place,
                  const std::string& dotted_prefix) {
    for (auto&& [key, node] : table) {
      const std::string name(key.str());
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
        diagnostics_.push_back({where(key, node, dotted_prefix + name), "",
                                "unknown key '" + name + "' in " + place + detail::did_you_mean(name, allowed)});
    }
  }

  // Converts a TOML node to a parameter value of the declared type; reports and returns monostate on failure.
  Value convert(const toml::node& node, const ParamSpec& spec, const std::string& stage, const SourcePos& at) {
    const auto report = [&](std::string message) { diagnostics_.push_back({at, stage, std::move(message)}); };
    const auto wrong_type = [&] {
      report(
            "parameter '" + spec.name + "' must be " + (spec.type == ParamType::Int ? "an " : "a ") +
                param_type_name(spec.type) + ", got " + node_type_name(node));
      return Value{};
    };
    Value value;
    switch (spec.type) {
      case ParamType::Int:
        if (!node.is_integer()) return wrong_type();
        value = node.as_integer()->get();
        break;
      case ParamType::Float:
        if (node.is_integer()) value = static_cast<double>(node.as_integer()->get());
        else if (node.is_floating_point()) value = node.as_floating_point()->get();
        else return wrong_type();
        if (!std::isfinite(std::get<double>(value))) {
          report("parameter '" + spec.name + "' must be a finite number");
          return {};
        }
        break;
      case ParamType::Bool:
        if (!node.is_boolean()) return wrong_type();
        value = node.as_boolean()->get();
        break;
      case ParamType::String:
      case ParamType::Path:
        if (!node.is_string()) return wrong_type();
        value = text_of(node, stage, at);
        break;
      case ParamType::StringList: {
        std::vector<std::string> list;
        if (node.is_string()) {
          list.push_back(text_of(node, stage, at));
        } else if (const auto* array = node.as_array()) {
          for (const auto& element : *array) {
            if (!element.is_string()) {
              error(element.source(), stage, "parameter '" + spec.name + "' must be a list of strings, but an element is " +
                                                 node_type_name(element));
              return {};
            }
            list.push_back(text_of(element, stage, where(element, "")));
          }
        } else {
          return wrong_type();
        }
        value = std::move(list);
        break;
      }
      case ParamType::FloatList: {
        const auto* array = node.as_array();
        if (!array) return wrong_type();
        std::vector<double> list;
        for (const auto& element : *array) {
          if (!element.is_number()) {
            report("parameter '" + spec.name + "' must be a list of numbers, but an element is " + node_type_name(element));
            return {};
          }
          list.push_back(element.is_integer() ? static_cast<double>(element.as_integer()->get()) : element.as_floating_point()->get());
        }
        value = std::move(list);
        break;
      }
    }
    if (spec.min || spec.max) {
      const double number = spec.type == ParamType::Int ? static_cast<double>(std::get<std::int64_t>(value))
                                                        : std::get<double>(value);
      if ((spec.min && number < *spec.min) || (spec.max && number > *spec.max)) {
        report("parameter '" + spec.name + "' = " + value_to_string(value) + " is out of range " + param_range_text(spec));
        return {};
      }
    }
    if (const auto choices = spec.allowed(); !choices.empty()) {
      const auto& text = std::get<std::string>(value);
      if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
        std::string allowed;
        for (const auto& c : choices) allowed += (allowed.empty() ? "'" : ", '") + c + "'";
        report("parameter '" + spec.name + "' = '" + text + "' is not one of " + allowed + detail::did_you_mean(text, choices));
        return {};
      }
    }
    if (spec.type == ParamType::Path) value = resolve(std::get<std::string>(value)).string();
    return value;
  }

  void read_experiment(const toml::table& root, GraphSpec& spec) {
    const toml::node* node = root.get("experiment");
    if (!node) {
      diagnostics_.push_back({{file_name_, 1, 1}, "", "missing [experiment] table (with at least name = \"...\")"});
      return;
    }
    const toml::table* table = node->as_table();
    if (!table) return error(node->source(), "", "'experiment' must be a table");
    check_keys(*table, {"name", "output", "seed", "description"}, "[experiment]", "experiment.");
    if (const toml::node* description = table->get("description")) {
      if (!description->is_string()) error_at(*description, "experiment.description", "experiment description must be a string");
      else spec.experiment.description = description->as_string()->get();
    }
    if (const toml::node* name = table->get("name")) {
      if (!name->is_string() || name->as_string()->get().empty()) error_at(*name, "experiment.name", "experiment name must be a non-empty string");
      else spec.experiment.name = name->as_string()->get();
    } else {
      error(table->source(), "", "[experiment] needs name = \"...\"");
    }
    if (const toml::node* seed = table->get("seed")) {
      if (!seed->is_integer() || seed->as_integer()->get() < 0) error_at(*seed, "experiment.seed", "experiment seed must be a non-negative integer");
      else spec.experiment.seed = static_cast<std::uint64_t>(seed->as_integer()->get());
    }
    std::string output = "runs/" + (spec.experiment.name.empty() ? std::string("experiment") : spec.experiment.name);
    if (const toml::node* out = table->get("output")) {
      if (!out->is_string() || out->as_string()->get().empty()) error_at(*out, "experiment.output", "experiment output must be a non-empty string");
      else output = out->as_string()->get();
    }
    spec.experiment.output_dir = resolve(output);
    output_dir_ = spec.experiment.output_dir;
  }

  void read_run(const toml::table& root, GraphSpec& spec) {
    const toml::node* node = root.get("run");
    if (!node) return;
    const toml::table* table = node->as_table();
    if (!table) return error(node->source(), "", "'run' must be a table");
    check_keys(*table, {"max_in_flight", "max_tiles_in_flight", "threads", "report"}, "[run]", "run.");
    if (const toml::node* n = table->get("max_in_flight")) {
      if (!n->is_integer() || n->as_integer()->get() < 1 || n->as_integer()->get() > 1'000'000)
        error_at(*n, "run.max_in_flight", "run.max_in_flight must be an integer in [1, 1000000]");
      else spec.run.max_in_flight = n->as_integer()->get();
    }
    if (const toml::node* n = table->get("max_tiles_in_flight")) {
      if (!n->is_integer() || n->as_integer()->get() < 1 || n->as_integer()->get() > 10'000'000)
        error_at(*n, "run.max_tiles_in_flight", "run.max_tiles_in_flight must be an integer in [1, 10000000]");
      else spec.run.max_tiles_in_flight = n->as_integer()->get();
    }
    if (const toml::node* n = table->get("threads")) {
      if (!n->is_integer() || n->as_integer()->get() < 0 || n->as_integer()->get() > 4096)
        error_at(*n, "run.threads", "run.threads must be an integer in [0, 4096] (0: all cores)");
      else spec.run.threads = n->as_integer()->get();
    }
    if (const toml::node* n = table->get("report")) {
      if (!n->is_boolean()) error_at(*n, "run.report", "run.report must be true or false (true: write OUTPUT/report.html after the run)");
      else spec.run.report = n->as_boolean()->get();
    }
  }

  void read_slurm(const toml::table& root, GraphSpec& spec) {
    const toml::node* node = root.get("slurm");
    if (!node) return;
    const toml::table* table = node->as_table();
    if (!table) return error(node->source(), "", "'slurm' must be a table");
    const std::vector<std::string> resource_keys{"partition", "account", "time", "memory", "cpus", "gpus", "sbatch_options"};
    std::vector<std::string> keys = resource_keys;
    keys.insert(keys.end(), {"shards", "parallel", "evaluate"});
    check_keys(*table, keys, "[slurm]", "slurm.");
    const auto count = [&](const toml::table& t, const char* key, const std::string& dotted, std::int64_t low, std::int64_t high,
                           std::int64_t& into) {
      const toml::node* n = t.get(key);
      if (!n) return;
      if (!n->is_integer() || n->as_integer()->get() < low || n->as_integer()->get() > high)
        error_at(*n, dotted, dotted + " must be an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
      else into = n->as_integer()->get();
    };
    const auto resources = [&](const toml::table& t, const std::string& prefix, SlurmResources& into) {
      for (auto [key, field] : {std::pair{"partition", &into.partition}, std::pair{"account", &into.account},
                                std::pair{"time", &into.time}, std::pair{"memory", &into.memory}}) {
        const toml::node* n = t.get(key);
        if (!n) continue;
        const std::string dotted = prefix + key;
        if (const auto* clock = n->as_time()) {  // time = 04:00:00 unquoted (or --set slurm.time=04:00:00) is a TOML time
          const toml::time& v = clock->get();
          char text[16];
          std::snprintf(text, sizeof text, "%02d:%02d:%02d", int(v.hour), int(v.minute), int(v.second));
          *field = text;
          continue;
        }
        const bool word = n->is_string() && is_sbatch_word(n->as_string()->get());
        if (!word) error_at(*n, dotted, dotted + " must be a non-empty string without spaces or quotes");
        else *field = n->as_string()->get();
      }
      count(t, "cpus", prefix + "cpus", 1, 4096, into.cpus);
      count(t, "gpus", prefix + "gpus", 0, 64, into.gpus);
      if (const toml::node* n = t.get("sbatch_options")) {
        const auto* list = n->as_array();
        if (!list) return error_at(*n, prefix + "sbatch_options", prefix + "sbatch_options must be a list of strings like \"--qos=high\"");
        for (const auto& element : *list) {
          if (!element.is_string() || element.as_string()->get().rfind("--", 0) != 0 ||
              element.as_string()->get().find('\n') != std::string::npos)
            error_at(element, prefix + "sbatch_options", prefix + "sbatch_options entries must be sbatch options like \"--qos=high\"");
          else into.sbatch_options.push_back(element.as_string()->get());
        }
      }
    };
    count(*table, "shards", "slurm.shards", 1, 1'000'000, spec.slurm.shards);
    count(*table, "parallel", "slurm.parallel", 1, 1'000'000, spec.slurm.parallel);
    resources(*table, "slurm.", spec.slurm.extract);
    spec.slurm.evaluate = spec.slurm.extract;
    if (const toml::node* n = table->get("evaluate")) {
      const toml::table* evaluate = n->as_table();
      if (!evaluate) return error_at(*n, "slurm.evaluate", "slurm.evaluate must be a table ([slurm.evaluate])");
      check_keys(*evaluate, resource_keys, "[slurm.evaluate]", "slurm.evaluate.");
      if (evaluate->get("sbatch_options")) spec.slurm.evaluate.sbatch_options.clear();
      resources(*evaluate, "slurm.evaluate.", spec.slurm.evaluate);
    }
  }

  void read_plugins(const toml::table& root, GraphSpec& spec) {
    const toml::node* node = root.get("plugins");
    if (!node) return;
    const toml::table* table = node->as_table();
    if (!table) return error(node->source(), "", "'plugins' must be a table");
    check_keys(*table, {"path"}, "[plugins]", "plugins.");
    const toml::node* path = table->get("path");
    if (!path) return;
    if (path->is_string()) {
      spec.plugin_paths.push_back(resolve(path->as_string()->get()));
    } else if (const auto* array = path->as_array()) {
      for (const auto& element : *array) {
        if (element.is_string()) spec.plugin_paths.push_back(resolve(element.as_string()->get()));
        else error(element.source(), "", "plugins.path entries must be strings");
      }
    } else {
      error(path->source(), "", "plugins.path must be a string or a list of strings");
    }
  }

  void read_inputs(const toml::node& node, const std::string& id, const std::string& table_path, StageSpec& stage,
                   bool list_allowed) {
    const std::string dotted = table_path + (list_allowed ? ".inputs" : ".input");
    const auto report = [&](const toml::node& at, std::string message) {
      diagnostics_.push_back({where(at, dotted), id, std::move(message)});
    };
    stage.input_key_given = true;
    auto add = [&](const toml::node& element) {
      if (!element.is_string() || element.as_string()->get().empty()) {
        report(element, "an input must name a stage as a string, like \"tiles\" or \"tiles.port\"");
        return;
      }
      const std::string text = text_of(element, id, where(element, dotted));
      const auto dot = text.find('.');
      stage.inputs.push_back({text.substr(0, dot), dot == std::string::npos ? "" : text.substr(dot + 1), where(element, dotted)});
    };
    if (node.is_string()) return add(node);
    if (const auto* array = node.as_array(); array && list_allowed) {
      if (array->empty()) report(node, "'inputs' is empty");
      for (const auto& element : *array) add(element);
      return;
    }
    report(node, list_allowed ? "'inputs' must be a list of stage names" : "'input' must be a stage name string");
  }

  // after = "stage" or ["a", "b"]: the stages whose end this one waits for.
  void read_after(const toml::node& node, const std::string& id, const std::string& table_path, StageSpec& stage) {
    stage.after_pos = where(node, table_path + ".after");
    if (node.is_string()) {
      stage.after.push_back(text_of(node, id, stage.after_pos));
    } else if (const auto* array = node.as_array(); array && !array->empty() &&
                                                    std::all_of(array->begin(), array->end(), [](const toml::node& e) { return e.is_string(); })) {
      for (const auto& element : *array) stage.after.push_back(text_of(element, id, stage.after_pos));
    } else {
      diagnostics_.push_back({stage.after_pos, id, "'after' must be a stage name or a non-empty list of stage names"});
    }
  }

  // `table_path` is where the table is in the file ("stage.<id>", or "template.<name>" for an instance).
  void read_stage(const std::string& id, const toml::key& key, const toml::node& node, GraphSpec& spec,
                  const std::string& table_path) {
    StageSpec stage;
    stage.id = id;
    stage.pos = pos_of(key.source(), file_name_);
    if (instance_) {
      stage.template_name = instance_->name;
      stage.template_values = instance_->values;
    }
    const toml::table* table = node.as_table();
    if (!table) return error(node.source(), id, "a stage must be a table like [stage." + id + "]");

    // Inputs are read whatever the type, so that a stage whose type is missing or unknown still consumes
    // what it names: its upstream gets no knock-on "output is not consumed" on top of the real error.
    // An instance's own --set values (--set encode_dinov2_vits14.batch=8) take precedence over the template's.
    const toml::table* extra = nullptr;
    if (instance_)
      if (toml::table* own = instance_overrides_.get_as<toml::table>(id)) {
        extra = own;
        used_instance_overrides_.insert(id);
      }
    const auto field = [&](const char* name) {
      const toml::node* own = extra ? extra->get(name) : nullptr;
      return own ? own : table->get(name);
    };
    const toml::node* input = field("input");
    const toml::node* inputs = field("inputs");
    if (input && inputs) error(inputs->source(), id, "give either 'input' or 'inputs', not both");
    if (input) read_inputs(*input, id, table_path, stage, false);
    else if (inputs) read_inputs(*inputs, id, table_path, stage, true);
    if (const toml::node* after = field("after")) read_after(*after, id, table_path, stage);

    // A stage whose type is missing or unknown stays in the graph (without a contract), so that stages
    // reading from it get no misleading "unknown input" on top of the real error.
    const toml::node* use = field("use");
    if (!use) {
      error(key.source(), id, "missing 'use = \"<stage type>\"'");
      spec.stages.push_back(std::move(stage));
      return;
    }
    const SourcePos use_pos = where(*use, table_path + ".use");
    if (!use->is_string()) {
      diagnostics_.push_back({use_pos, id, "'use' must be a string naming a stage type"});
      spec.stages.push_back(std::move(stage));
      return;
    }
    stage.type = text_of(*use, id, use_pos);
    stage.contract = Registry::instance().find(stage.type);
    if (!stage.contract) {
      diagnostics_.push_back({use_pos, id,
                              "unknown stage type '" + stage.type + "'" +
                                  detail::did_you_mean(stage.type, Registry::instance().types()) +
                                  "; `flowrun plugins` lists the available ones"});
      spec.stages.push_back(std::move(stage));
      return;
    }
    const StageContract& contract = *stage.contract;

    std::vector<std::string> known{"use", "input", "inputs", "after"};
    if (instance_) known.insert(known.end(), {"for", "id"});
    for (const auto& p : contract.params) known.push_back(p.name);
    const auto read_param = [&](const toml::key& param_key, const toml::node& value, const std::string& dotted) {
      const std::string name(param_key.str());
      if (name == "use" || name == "input" || name == "inputs" || name == "after" || (instance_ && (name == "for" || name == "id"))) return;
      const ParamSpec* param = contract.find_param(name);
      if (!param) {
        diagnostics_.push_back({where(param_key, value, dotted + "." + name), id,
                                "unknown parameter '" + name + "' for stage type '" + stage.type + "'" +
                                    detail::did_you_mean(name, known)});
        return;
      }
      stage.param_pos[name] = where(value, dotted + "." + name);
      stage.params[name] = convert(value, *param, id, stage.param_pos[name]);
    };
    for (auto&& [param_key, value] : *table)
      if (!extra || !extra->get(param_key.str())) read_param(param_key, value, table_path);
    if (extra)
      for (auto&& [param_key, value] : *extra) read_param(param_key, value, "stage." + id);
    for (const auto& param : contract.params) {
      if (stage.params.count(param.name)) continue;
      if (param.required) error(key.source(), id, "missing required parameter '" + param.name + "' (" + param.doc + ")");
      Value value = param.default_value;
      if (param.type == ParamType::Path && std::holds_alternative<std::string>(value))
        value = resolve(std::get<std::string>(value)).string();
      stage.params[param.name] = std::move(value);
    }
    spec.stages.push_back(std::move(stage));
  }

  void read_stages(const toml::table& root, GraphSpec& spec) {
    const toml::node* node = root.get("stage");
    if (!node) {
      diagnostics_.push_back({{file_name_, 1, 1}, "", "the graph has no stages: add [stage.<id>] tables"});
      return;
    }
    const toml::table* table = node->as_table();
    if (!table) return error(node->source(), "", "'stage' must hold tables like [stage.<id>]");
    for (auto&& [key, value] : *table) read_stage(std::string(key.str()), key, value, spec, "stage." + std::string(key.str()));
  }

  // [lists]: named lists of strings that templates iterate over.
  void read_lists(const toml::table& root) {
    const toml::node* node = root.get("lists");
    if (!node) return;
    const toml::table* table = node->as_table();
    if (!table) return error(node->source(), "", "'lists' must be a table of lists, like encoder = [\"a\", \"b\"]");
    for (auto&& [key, value] : *table) {
      const std::string name(key.str());
      if (auto values = string_list(value, "lists." + name, "list '" + name + "'")) lists_[name] = std::move(*values);
    }
  }

  // [template.<name>]: a stage table instantiated once per combination of the values of its `for` variables;
  // "{variable}" in any string value (and in input names) is replaced by the instance's value.
  void read_templates(const toml::table& root, GraphSpec& spec) {
    const toml::node* node = root.get("template");
    if (!node) return;
    const toml::table* templates = node->as_table();
    if (!templates) return error(node->source(), "", "'template' must hold tables like [template.<name>]");
    for (auto&& [key, value] : *templates) {
      const std::string name(key.str());
      const std::string table_path = "template." + name;
      const toml::table* table = value.as_table();
      if (!table) {
        error(value.source(), name, "a template must be a table like [template." + name + "]");
        continue;
      }
      const toml::node* loop = table->get("for");
      if (!loop) {
        diagnostics_.push_back({pos_of(key.source(), file_name_), name,
                                "a template needs for = [\"a\", \"b\"] or for = { variable = \"list\", ... }", true});
        continue;
      }
      const auto variables = read_for(*loop, name, table_path + ".for");
      if (!variables) continue;
      std::optional<std::string> id_pattern;
      if (const toml::node* id = table->get("id")) {
        if (id->is_string()) id_pattern = id->as_string()->get();
        else error_at(*id, table_path + ".id", "a template's id must be a string like \"encode_{encoder}\"");
      }
      template_instances_[name];  // a template without instances is still a template
      for (const auto& values : cross_product(*variables)) {
        Instance instance{name, values};
        std::string id = name;
        for (const auto& [variable, v] : values) id += "_" + v;
        instance_ = &instance;
        if (id_pattern) id = text_of(*table->get("id"), name, where(*table->get("id"), table_path + ".id"));
        if (id.empty() || id.find_first_of(". \t\"'[]") != std::string::npos ||
            spec.find_stage(id) != std::string::npos) {
          diagnostics_.push_back({pos_of(key.source(), file_name_), name,
                                  "template instance id '" + id + "' " +
                                      (spec.find_stage(id) != std::string::npos ? "is already a stage"
                                                                                : "is not a valid stage id") +
                                      "; give the template an id = pattern like \"" + name + "_{" +
                                      values.front().first + "}\""});
          instance_ = nullptr;
          continue;
        }
        read_stage(id, key, value, spec, table_path);
        template_instances_[name].push_back(id);
        instance_ = nullptr;
      }
    }
  }

  const std::map<std::string, std::vector<std::string>>& template_instances() const { return template_instances_; }

  // --set values for stages that are neither [stage.*] nor [template.*] tables: maybe template instances.
  void set_instance_overrides(toml::table overrides) { instance_overrides_ = std::move(overrides); }
  // Those that named no instance: reported as --set naming a stage that is not in the graph.
  void report_unused_instance_overrides(const GraphSpec& spec) {
    std::vector<std::string> ids;
    for (const auto& stage : spec.stages) ids.push_back(stage.id);
    for (auto&& [id, unused] : instance_overrides_) {
      const std::string name(id.str());
      if (used_instance_overrides_.count(name)) continue;
      for (const auto& [dotted, origin] : override_origins_)
        if (dotted.rfind("stage." + name + ".", 0) == 0)
          diagnostics_.push_back({{origin, 0, 0}, name, "--set names a stage that is not in the graph" + detail::did_you_mean(name, ids)});
    }
  }

 private:
  struct Instance {
    std::string name;
    std::vector<std::pair<std::string, std::string>> values;  // variable, value; in the for table's order
  };
  using Variables = std::vector<std::pair<std::string, std::vector<std::string>>>;

  // A non-empty list of non-empty strings, or nullopt after reporting.
  std::optional<std::vector<std::string>> string_list(const toml::node& node, const std::string& dotted,
                                                      const std::string& what) {
    const auto* array = node.as_array();
    if (!array || array->empty()) {
      error_at(node, dotted, what + " must be a non-empty list of strings");
      return std::nullopt;
    }
    std::vector<std::string> values;
    for (const auto& element : *array) {
      if (!element.is_string() || element.as_string()->get().empty()) {
        error_at(element, dotted, what + " must hold non-empty strings, but an element is " + node_type_name(element));
        return std::nullopt;
      }
      values.push_back(element.as_string()->get());
    }
    return values;
  }

  // for = ["a", "b"] (variable 'item'), for = "list" (variable named as the list), or
  // for = { variable = "list" | ["a", "b"], ... } (every combination).
  std::optional<Variables> read_for(const toml::node& loop, const std::string& name, const std::string& dotted) {
    const auto named_list = [&](const toml::node& at, const std::string& list) -> std::optional<std::vector<std::string>> {
      if (auto it = lists_.find(list); it != lists_.end()) return it->second;
      std::vector<std::string> names;
      for (const auto& [n, unused] : lists_) names.push_back(n);
      diagnostics_.push_back({where(at, dotted), name, "template 'for' names the list '" + list +
                                                           "', which [lists] does not define" +
                                                           detail::did_you_mean(list, names), true});
      return std::nullopt;
    };
    Variables variables;
    if (loop.is_array()) {
      auto values = string_list(loop, dotted, "a template's 'for'");
      if (!values) return std::nullopt;
      variables.emplace_back("item", std::move(*values));
    } else if (loop.is_string()) {
      auto values = named_list(loop, loop.as_string()->get());
      if (!values) return std::nullopt;
      variables.emplace_back(loop.as_string()->get(), std::move(*values));
    } else if (const auto* table = loop.as_table(); table && !table->empty()) {
      for (auto&& [variable, value] : *table) {
        std::optional<std::vector<std::string>> values =
            value.is_string() ? named_list(value, value.as_string()->get())
                              : string_list(value, dotted, "template variable '" + std::string(variable.str()) + "'");
        if (!values) return std::nullopt;
        variables.emplace_back(std::string(variable.str()), std::move(*values));
      }
    } else {
      diagnostics_.push_back({where(loop, dotted), name,
                              "a template's 'for' must be a list of strings, the name of a list in [lists], or a "
                              "table of variables like { encoder = \"encoders\", split = [\"train\", \"test\"] }",
                              true});
      return std::nullopt;
    }
    return variables;
  }

  static std::vector<std::vector<std::pair<std::string, std::string>>> cross_product(const Variables& variables) {
    std::vector<std::vector<std::pair<std::string, std::string>>> combinations{{}};
    for (const auto& [variable, values] : variables) {
      std::vector<std::vector<std::pair<std::string, std::string>>> next;
      for (const auto& partial : combinations)
        for (const auto& v : values) {
          next.push_back(partial);
          next.back().emplace_back(variable, v);
        }
      combinations = std::move(next);
    }
    return combinations;
  }

  // A string value of the file; inside a template instance, "{variable}" becomes the instance's value ("{{"
  // and "}}" are literal braces), and a name that is not a variable is reported.
  std::string text_of(const toml::node& node, const std::string& stage, const SourcePos& at) {
    const std::string& text = node.as_string()->get();
    if (!instance_) return text;
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
      if ((text[i] == '{' || text[i] == '}') && i + 1 < text.size() && text[i + 1] == text[i]) {
        out += text[i];
        i += 2;
        continue;
      }
      const std::size_t close = text[i] == '{' ? text.find('}', i) : std::string::npos;
      if (close == std::string::npos) {
        out += text[i++];
        continue;
      }
      const std::string variable = text.substr(i + 1, close - i - 1);
      const auto it = std::find_if(instance_->values.begin(), instance_->values.end(),
                                   [&](const auto& pair) { return pair.first == variable; });
      if (it != instance_->values.end()) {
        out += it->second;
      } else if ("{" + variable + "}" == kOutputVariable) {
        out += kOutputVariable;  // resolved with the path
      } else {
        std::string names;
        for (const auto& [v, unused] : instance_->values) names += (names.empty() ? "" : ", ") + v;
        diagnostics_.push_back({at, stage, "'{" + variable + "}' is not a variable of template '" + instance_->name +
                                               "' (its variables: " + names + ")"});
        out += text.substr(i, close - i + 1);
      }
      i = close + 1;
    }
    return out;
  }

 private:
  static constexpr const char* kOutputVariable = "{output}";
  std::filesystem::path output_dir_;
  std::map<std::string, std::vector<std::string>> lists_;
  std::map<std::string, std::vector<std::string>> template_instances_;  // template name -> instance ids
  const Instance* instance_ = nullptr;  // the template instance being read, if any
  toml::table instance_overrides_;      // instance id -> { param = value } from --set
  std::set<std::string> used_instance_overrides_;
  std::filesystem::path file_;
  std::string file_name_;
  std::vector<Diagnostic>& diagnostics_;
  std::map<std::string, std::string> override_origins_;
};

// Applies one --set onto the parsed document; its value carries the argument as source "file".
// Returns the dotted key it set ("stage.encode.batch"), or "" when it could not be applied.
std::string apply_override(toml::table& root, const Override& o, std::vector<Diagnostic>& diagnostics,
                           toml::table& instance_overrides) {
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + o.value, std::string_view(o.origin));
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", o.value}};  // a bare word: take it as a string
  }
  std::vector<std::string> parts;
  std::stringstream key(o.key);
  for (std::string part; std::getline(key, part, '.');) parts.push_back(part);
  const bool graph_level = parts.front() == "experiment" || parts.front() == "run" || parts.front() == "plugins" ||
                           parts.front() == "lists" || parts.front() == "slurm";
  if (!graph_level) {
    // A template's name sets the parameter of every instance it makes.
    const toml::table* stages = root.get_as<toml::table>("stage");
    const toml::table* templates = root.get_as<toml::table>("template");
    const bool is_template = (!stages || !stages->get(parts.front())) && templates && templates->get(parts.front());
    parts.insert(parts.begin(), is_template ? "template" : "stage");
  }
  const bool slurm_evaluate = parts.size() == 3 && parts[0] == "slurm" && parts[1] == "evaluate";  // [slurm.evaluate]
  if (parts.size() != (graph_level ? 2u : 3u) && !slurm_evaluate) {
    diagnostics.push_back({{o.origin, 0, 0}, "", "override key '" + o.key + "' must look like stage_id.param, template.param, experiment.key, run.key or lists.name"});
    return "";
  }
  toml::table* table = &root;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* next = table->get(parts[i]);
    if (!next) {
      if (!graph_level && i == 1 && root.get_as<toml::table>("template")) {
        // Perhaps a stage a template makes: known only once the templates are expanded.
        if (!instance_overrides.get(parts[1])) instance_overrides.insert(parts[1], toml::table{});
        parsed.get("v")->visit(
            [&](auto&& value) { instance_overrides.get_as<toml::table>(parts[1])->insert_or_assign(parts[2], value); });
        return "stage." + parts[1] + "." + parts[2];
      }
      if (!graph_level && i == 1) {
        std::vector<std::string> names{"experiment", "run", "plugins"};
        for (const char* table_name : {"stage", "template"})
          if (const toml::table* stages = root.get_as<toml::table>(table_name))
            for (auto&& [stage_key, unused] : *stages) names.emplace_back(stage_key.str());
        diagnostics.push_back({{o.origin, 0, 0}, parts[1],
                               "--set names a stage that is not in the graph" + detail::did_you_mean(parts[1], names)});
        return "";
      }
      table->insert(parts[i], toml::table{});
      next = table->get(parts[i]);
    }
    table = next->as_table();
    if (!table) {
      diagnostics.push_back({{o.origin, 0, 0}, "", "override key '" + o.key + "' does not name a table"});
      return "";
    }
  }
  parsed.get("v")->visit([&](auto&& value) { table->insert_or_assign(parts.back(), value); });
  std::string dotted;
  for (const auto& part : parts) dotted += (dotted.empty() ? "" : ".") + part;
  return dotted;
}

// An input naming a template (and no stage of that id) reads every stage the template made.
void expand_template_inputs(GraphSpec& spec, const std::map<std::string, std::vector<std::string>>& templates) {
  for (auto& stage : spec.stages) {
    std::vector<InputRef> inputs;
    for (const auto& ref : stage.inputs) {
      const auto it = templates.find(ref.stage);
      if (it == templates.end() || spec.find_stage(ref.stage) != std::string::npos) {
        inputs.push_back(ref);
        continue;
      }
      for (const auto& id : it->second) inputs.push_back({id, ref.port, ref.pos});
    }
    stage.inputs = std::move(inputs);
  }
}

// A problem every instance of a template has at the same place (an unknown parameter, a missing input) is
// reported once, against the template; one that depends on the instance's values stays with that instance.
void merge_template_diagnostics(const GraphSpec& spec, const std::map<std::string, std::vector<std::string>>& templates,
                                std::vector<Diagnostic>& diagnostics) {
  std::map<std::string, std::string> template_of;  // instance id -> template name
  for (const auto& stage : spec.stages)
    if (!stage.template_name.empty()) template_of[stage.id] = stage.template_name;
  using Place = std::tuple<std::string, std::string, int, int, std::string>;  // template, file, line, column, message
  std::map<Place, std::size_t> count;
  const auto place_of = [&](const Diagnostic& d) -> std::optional<Place> {
    const auto it = template_of.find(d.stage);
    if (it == template_of.end()) return std::nullopt;
    return Place{it->second, d.pos.file, d.pos.line, d.pos.column, d.message};
  };
  for (const auto& d : diagnostics)
    if (auto place = place_of(d)) ++count[*place];
  std::vector<Diagnostic> merged;
  std::set<Place> reported;
  for (auto& d : diagnostics) {
    const auto place = place_of(d);
    if (!place || count[*place] < templates.at(std::get<0>(*place)).size()) {
      merged.push_back(std::move(d));
      continue;
    }
    if (!reported.insert(*place).second) continue;
    d.stage = std::get<0>(*place);
    d.whole_template = true;
    merged.push_back(std::move(d));
  }
  diagnostics = std::move(merged);
}

}  // namespace

GraphLoad load_graph_text(const std::string& text, const std::filesystem::path& file_name,
                          const std::vector<Override>& overrides, PluginLoader& loader, Validation validation) {
  GraphLoad load;
  load.spec.file = std::filesystem::absolute(file_name);
  auto& diagnostics = load.diagnostics;
  const std::string name = file_name.string();

  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    diagnostics.push_back({pos_of(e.source(), name), "", "invalid TOML: " + std::string(e.description())});
    return load;
  }
  std::map<std::string, std::string> override_origins;
  toml::table instance_overrides;
  for (const auto& o : overrides)
    if (auto key = apply_override(root, o, diagnostics, instance_overrides); !key.empty()) override_origins[key] = o.origin;

  GraphReader reader(file_name, diagnostics);
  reader.set_override_origins(std::move(override_origins));
  reader.set_instance_overrides(std::move(instance_overrides));
  reader.check_keys(root, {"schema_version", "experiment", "run", "slurm", "plugins", "lists", "template", "stage"}, "the graph file", "");
  if (const toml::node* version = root.get("schema_version")) {
    if (!version->is_integer() || version->as_integer()->get() != 1)
      reader.error(version->source(), "", "schema_version must be 1 (this histoflow reads graph schema 1)");
  } else {
    diagnostics.push_back({{name, 1, 1}, "", "missing schema_version = 1 at the top of the file"});
  }
  reader.read_experiment(root, load.spec);
  reader.read_run(root, load.spec);
  reader.read_slurm(root, load.spec);
  reader.read_plugins(root, load.spec);
  const std::size_t plugin_errors_before = loader.errors().size();
  for (const auto& dir : load.spec.plugin_paths) {
    try {
      std::error_code ec;
      if (std::filesystem::is_directory(dir, ec)) loader.load_directory(dir, "[plugins] path");
      else if (std::filesystem::exists(dir, ec)) loader.load_file(dir, "[plugins] path");
      else diagnostics.push_back({{name, 0, 0}, "", "plugin path '" + dir.string() + "' does not exist"});
    } catch (const std::exception& e) {
      diagnostics.push_back({{name, 0, 0}, "", e.what()});
    }
  }
  for (std::size_t i = plugin_errors_before; i < loader.errors().size(); ++i)
    diagnostics.push_back({{name, 0, 0}, "", loader.errors()[i]});
  reader.read_lists(root);
  if (root.get("stage") || !root.get("template")) reader.read_stages(root, load.spec);
  reader.read_templates(root, load.spec);
  reader.report_unused_instance_overrides(load.spec);
  expand_template_inputs(load.spec, reader.template_instances());
  load.spec.experiment.graph_file = load.spec.file;
  if (validation == Validation::Full && !load.spec.stages.empty()) detail::validate_structure(load.spec, diagnostics);
  detail::check_contract_rules(load.spec, validation == Validation::Full, diagnostics);
  merge_template_diagnostics(load.spec, reader.template_instances(), diagnostics);

  // The file's problems first, in reading order; then those of --set arguments.
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [&](const Diagnostic& a, const Diagnostic& b) {
    return std::make_tuple(a.pos.file != name, a.pos.line, a.pos.column) <
           std::make_tuple(b.pos.file != name, b.pos.line, b.pos.column);
  });
  return load;
}

GraphLoad load_graph(const std::filesystem::path& file, const std::vector<Override>& overrides, PluginLoader& loader) {
  std::string text;
  try {
    text = read_file_within_limit(file, InputLimit::GraphFileBytes);
  } catch (const std::exception& e) {
    GraphLoad load;
    load.diagnostics.push_back({{file.string(), 0, 0}, "", std::string("cannot read the graph file: ") + e.what()});
    return load;
  }
  return load_graph_text(text, file, overrides, loader);
}

}  // namespace histoflow
