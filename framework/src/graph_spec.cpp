// Graph files: TOML in, GraphSpec and every diagnostic out.
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "histoflow/errors.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/registry.hpp"
#include "nearest_name.hpp"
#include "validate_structure.hpp"

namespace histoflow {

std::string Diagnostic::format() const {
  std::string text = pos.file;
  if (pos.line > 0) text += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  text += ": error: ";
  if (!stage.empty()) text += "stage '" + stage + "': ";
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

  std::filesystem::path resolve(const std::string& path) const {
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
        value = node.as_string()->get();
        break;
      case ParamType::StringList: {
        std::vector<std::string> list;
        if (node.is_string()) {
          list.push_back(node.as_string()->get());
        } else if (const auto* array = node.as_array()) {
          for (const auto& element : *array) {
            if (!element.is_string()) {
              error(element.source(), stage, "parameter '" + spec.name + "' must be a list of strings, but an element is " +
                                                 node_type_name(element));
              return {};
            }
            list.push_back(element.as_string()->get());
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
  }

  void read_run(const toml::table& root, GraphSpec& spec) {
    const toml::node* node = root.get("run");
    if (!node) return;
    const toml::table* table = node->as_table();
    if (!table) return error(node->source(), "", "'run' must be a table");
    check_keys(*table, {"max_in_flight", "max_tiles_in_flight", "threads"}, "[run]", "run.");
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

  void read_inputs(const toml::node& node, const std::string& id, StageSpec& stage, bool list_allowed) {
    const std::string dotted = "stage." + id + (list_allowed ? ".inputs" : ".input");
    const auto report = [&](const toml::node& at, std::string message) {
      diagnostics_.push_back({where(at, dotted), id, std::move(message)});
    };
    stage.input_key_given = true;
    auto add = [&](const toml::node& element) {
      if (!element.is_string() || element.as_string()->get().empty()) {
        report(element, "an input must name a stage as a string, like \"tiles\" or \"tiles.port\"");
        return;
      }
      const std::string text = element.as_string()->get();
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

  void read_stage(const std::string& id, const toml::key& key, const toml::node& node, GraphSpec& spec) {
    StageSpec stage;
    stage.id = id;
    stage.pos = pos_of(key.source(), file_name_);
    const toml::table* table = node.as_table();
    if (!table) return error(node.source(), id, "a stage must be a table like [stage." + id + "]");

    // Inputs are read whatever the type, so that a stage whose type is missing or unknown still consumes
    // what it names: its upstream gets no knock-on "output is not consumed" on top of the real error.
    const toml::node* input = table->get("input");
    const toml::node* inputs = table->get("inputs");
    if (input && inputs) error(inputs->source(), id, "give either 'input' or 'inputs', not both");
    if (input) read_inputs(*input, id, stage, false);
    else if (inputs) read_inputs(*inputs, id, stage, true);

    // A stage whose type is missing or unknown stays in the graph (without a contract), so that stages
    // reading from it get no misleading "unknown input" on top of the real error.
    const toml::node* use = table->get("use");
    if (!use) {
      error(key.source(), id, "missing 'use = \"<stage type>\"'");
      spec.stages.push_back(std::move(stage));
      return;
    }
    const SourcePos use_pos = where(*use, "stage." + id + ".use");
    if (!use->is_string()) {
      diagnostics_.push_back({use_pos, id, "'use' must be a string naming a stage type"});
      spec.stages.push_back(std::move(stage));
      return;
    }
    stage.type = use->as_string()->get();
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

    std::vector<std::string> known{"use", "input", "inputs"};
    for (const auto& p : contract.params) known.push_back(p.name);
    for (auto&& [param_key, value] : *table) {
      const std::string name(param_key.str());
      if (name == "use" || name == "input" || name == "inputs") continue;
      const ParamSpec* param = contract.find_param(name);
      if (!param) {
        diagnostics_.push_back({where(param_key, value, "stage." + id + "." + name), id,
                                "unknown parameter '" + name + "' for stage type '" + stage.type + "'" +
                                    detail::did_you_mean(name, known)});
        continue;
      }
      stage.param_pos[name] = where(value, "stage." + id + "." + name);
      stage.params[name] = convert(value, *param, id, stage.param_pos[name]);
    }
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
    for (auto&& [key, value] : *table) read_stage(std::string(key.str()), key, value, spec);
  }

 private:
  std::filesystem::path file_;
  std::string file_name_;
  std::vector<Diagnostic>& diagnostics_;
  std::map<std::string, std::string> override_origins_;
};

// Applies one --set onto the parsed document; its value carries the argument as source "file".
// Returns the dotted key it set ("stage.encode.batch"), or "" when it could not be applied.
std::string apply_override(toml::table& root, const Override& o, std::vector<Diagnostic>& diagnostics) {
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + o.value, std::string_view(o.origin));
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", o.value}};  // a bare word: take it as a string
  }
  std::vector<std::string> parts;
  std::stringstream key(o.key);
  for (std::string part; std::getline(key, part, '.');) parts.push_back(part);
  const bool graph_level = parts.front() == "experiment" || parts.front() == "run" || parts.front() == "plugins";
  if (!graph_level) parts.insert(parts.begin(), "stage");
  if (parts.size() != (graph_level ? 2u : 3u)) {
    diagnostics.push_back({{o.origin, 0, 0}, "", "override key '" + o.key + "' must look like stage_id.param, experiment.key or run.key"});
    return "";
  }
  toml::table* table = &root;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* next = table->get(parts[i]);
    if (!next) {
      if (!graph_level && i == 1) {
        std::vector<std::string> names{"experiment", "run", "plugins"};
        if (const toml::table* stages = root.get_as<toml::table>("stage"))
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
  for (const auto& o : overrides)
    if (auto key = apply_override(root, o, diagnostics); !key.empty()) override_origins[key] = o.origin;

  GraphReader reader(file_name, diagnostics);
  reader.set_override_origins(std::move(override_origins));
  reader.check_keys(root, {"schema_version", "experiment", "run", "plugins", "stage"}, "the graph file", "");
  if (const toml::node* version = root.get("schema_version")) {
    if (!version->is_integer() || version->as_integer()->get() != 1)
      reader.error(version->source(), "", "schema_version must be 1 (this histoflow reads graph schema 1)");
  } else {
    diagnostics.push_back({{name, 1, 1}, "", "missing schema_version = 1 at the top of the file"});
  }
  reader.read_experiment(root, load.spec);
  reader.read_run(root, load.spec);
  reader.read_plugins(root, load.spec);
  const std::size_t plugin_errors_before = loader.errors().size();
  for (const auto& dir : load.spec.plugin_paths) {
    try {
      std::error_code ec;
      if (std::filesystem::is_directory(dir, ec)) loader.load_directory(dir);
      else if (std::filesystem::exists(dir, ec)) loader.load_file(dir);
      else diagnostics.push_back({{name, 0, 0}, "", "plugin path '" + dir.string() + "' does not exist"});
    } catch (const std::exception& e) {
      diagnostics.push_back({{name, 0, 0}, "", e.what()});
    }
  }
  for (std::size_t i = plugin_errors_before; i < loader.errors().size(); ++i)
    diagnostics.push_back({{name, 0, 0}, "", loader.errors()[i]});
  reader.read_stages(root, load.spec);
  load.spec.experiment.graph_file = load.spec.file;
  if (validation == Validation::Full && !load.spec.stages.empty()) detail::validate_structure(load.spec, diagnostics);
  detail::check_contract_rules(load.spec, validation == Validation::Full, diagnostics);

  // The file's problems first, in reading order; then those of --set arguments.
  std::stable_sort(diagnostics.begin(), diagnostics.end(), [&](const Diagnostic& a, const Diagnostic& b) {
    return std::make_tuple(a.pos.file != name, a.pos.line, a.pos.column) <
           std::make_tuple(b.pos.file != name, b.pos.line, b.pos.column);
  });
  return load;
}

GraphLoad load_graph(const std::filesystem::path& file, const std::vector<Override>& overrides, PluginLoader& loader) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    GraphLoad load;
    load.diagnostics.push_back({{file.string(), 0, 0}, "", "cannot read the graph file"});
    return load;
  }
  std::stringstream text;
  text << in.rdbuf();
  return load_graph_text(text.str(), file, overrides, loader);
}

}  // namespace histoflow
