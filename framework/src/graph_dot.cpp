// Renderings of a validated graph: Graphviz for humans, fully resolved TOML for reproducibility.
#include <sstream>

#include "histoflow/graph.hpp"
#include "histoflow/version.hpp"

namespace histoflow {
namespace {

// `every`: also the values that mean "Slurm's default" ([slurm.evaluate] falls back to [slurm] for what it omits).
void write_slurm_resources(std::ostream& out, const SlurmResources& r, bool every) {
  for (const auto& [key, text] : {std::pair{"partition", &r.partition}, std::pair{"account", &r.account}, std::pair{"time", &r.time},
                                  std::pair{"memory", &r.memory}})
    if (!text->empty()) out << key << " = " << value_to_string(*text) << "\n";
  if (r.cpus) out << "cpus = " << r.cpus << "\n";
  if (r.gpus || every) out << "gpus = " << r.gpus << "\n";
  if (!r.sbatch_options.empty() || every) out << "sbatch_options = " << value_to_string(r.sbatch_options) << "\n";
}

// [slurm] and [slurm.evaluate] (every value, the evaluation's filled in), when the graph has them.
void write_slurm_settings(std::ostream& out, const SlurmSettings& slurm) {
  std::ostringstream extract, evaluate;
  write_slurm_resources(extract, slurm.extract, false);
  write_slurm_resources(evaluate, slurm.evaluate, true);
  const auto unset = [](const SlurmResources& r) {
    return r.partition.empty() && r.account.empty() && r.time.empty() && r.memory.empty() && r.cpus == 0 && r.gpus == 0 &&
           r.sbatch_options.empty();
  };
  if (slurm.shards == 0 && slurm.parallel == 0 && unset(slurm.extract) && unset(slurm.evaluate)) return;  // no [slurm] table
  out << "\n[slurm]\n";
  if (slurm.shards) out << "shards = " << slurm.shards << "\n";
  if (slurm.parallel) out << "parallel = " << slurm.parallel << "\n";
  out << extract.str();
  out << "\n[slurm.evaluate]\n" << evaluate.str();
}

// schema_version, [experiment], [run], [slurm] and [plugins] as the run uses them.
void write_graph_settings(std::ostream& out, const GraphSpec& spec) {
  out << "schema_version = 1\n\n[experiment]\n";
  out << "name = " << value_to_string(spec.experiment.name) << "\n";
  if (!spec.experiment.description.empty())
    out << "description = " << value_to_string(spec.experiment.description) << "\n";
  out << "output = " << value_to_string(spec.experiment.output_dir.string()) << "\n";
  out << "seed = " << spec.experiment.seed << "\n\n[run]\n";
  out << "max_in_flight = " << spec.run.max_in_flight << "\nmax_tiles_in_flight = " << spec.run.max_tiles_in_flight
      << "\nthreads = " << spec.run.threads << "\n";
  if (spec.run.report) out << "report = true\n";
  write_slurm_settings(out, spec.slurm);
  if (!spec.plugin_paths.empty()) {
    std::vector<std::string> paths;
    for (const auto& p : spec.plugin_paths) paths.push_back(p.string());
    out << "\n[plugins]\npath = " << value_to_string(paths) << "\n";
  }
}

}  // namespace

std::string graph_to_dot(const GraphSpec& spec) {
  std::ostringstream out;
  out << "digraph \"" << spec.experiment.name << "\" {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
  for (const auto& s : spec.stages) {
    const char* shape = s.contract && s.contract->is_source() ? ", shape=invhouse" : s.contract && s.contract->is_sink() ? ", shape=house" : "";
    out << "  \"" << s.id << "\" [label=\"" << s.id << "\\n(" << s.type << ")\"" << shape << "];\n";
  }
  for (const auto& e : spec.edges) {
    const auto& port = spec.stages[e.from].contract->outputs[e.from_port];
    out << "  \"" << spec.stages[e.from].id << "\" -> \"" << spec.stages[e.to].id << "\" [label=\"" << port.kind << "\"];\n";
  }
  out << "}\n";
  return out.str();
}

std::string resolved_graph_toml(const GraphSpec& spec) {
  std::ostringstream out;
  out << "# Fully resolved graph written by histoflow " << kVersion << ": every default filled in.\n";
  out << "# Source: " << spec.file.string() << "\n";
  write_graph_settings(out, spec);
  for (std::size_t index : spec.topo_order) {
    const StageSpec& s = spec.stages[index];
    out << "\n[stage." << s.id << "]\nuse = " << value_to_string(s.type) << "\n";
    if (!s.inputs.empty()) {
      std::vector<std::string> inputs;
      for (const auto& i : s.inputs) inputs.push_back(i.port.empty() ? i.stage : i.stage + "." + i.port);
      out << "inputs = " << value_to_string(inputs) << "\n";
    }
    if (!s.after.empty()) out << "after = " << value_to_string(s.after) << "\n";
    for (const auto& [name, value] : s.params)
      if (!std::holds_alternative<std::monostate>(value)) out << name << " = " << value_to_string(value) << "\n";
  }
  return out.str();
}

std::string expanded_graph_toml(const GraphSpec& spec) {
  std::ostringstream out;
  out << "# " << spec.file.string() << " with its templates expanded (flowrun graph --expand): the parameters as\n"
      << "# written, paths resolved; defaults are left out.\n";
  write_graph_settings(out, spec);
  for (const StageSpec& s : spec.stages) {
    out << "\n";
    if (!s.template_name.empty()) {
      out << "# from [template." << s.template_name << "] with";
      for (const auto& [variable, value] : s.template_values) out << " " << variable << " = " << value_to_string(value);
      out << "\n";
    }
    out << "[stage." << s.id << "]\nuse = " << value_to_string(s.type) << "\n";
    if (!s.inputs.empty()) {
      std::vector<std::string> inputs;
      for (const auto& i : s.inputs) inputs.push_back(i.port.empty() ? i.stage : i.stage + "." + i.port);
      out << "inputs = " << value_to_string(inputs) << "\n";
    }
    if (!s.after.empty()) out << "after = " << value_to_string(s.after) << "\n";
    for (const auto& [name, value] : s.params)
      if (s.param_pos.count(name) && !std::holds_alternative<std::monostate>(value))
        out << name << " = " << value_to_string(value) << "\n";
  }
  return out.str();
}

}  // namespace histoflow
