// Structural validation: edges, packet kinds, cycles, unconsumed outputs, ordering promises.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>

#include "histoflow/registry.hpp"
#include "nearest_name.hpp"
#include "validate_structure.hpp"

namespace histoflow::detail {
namespace {

std::string port_list(const std::vector<PortSpec>& ports) {
  std::string text;
  for (const auto& p : ports) text += (text.empty() ? "'" : ", '") + p.name + "'";
  return text;
}

// Ports must name kinds that a loaded plugin (or the framework) declares: a contract naming an undeclared
// kind is a plugin that was built against another vocabulary, or whose kind's owner is not loaded.
void check_port_kinds(const GraphSpec& spec, std::vector<Diagnostic>& diagnostics) {
  const Registry& registry = Registry::instance();
  for (const auto& stage : spec.stages) {
    if (!stage.contract) continue;
    for (const auto* ports : {&stage.contract->inputs, &stage.contract->outputs})
      for (const auto& port : *ports)
        if (port.kind != kAnyKind && !registry.find_kind(port.kind))
          diagnostics.push_back({stage.pos, stage.id,
                                 "stage type '" + stage.type + "'" +
                                     (stage.contract->plugin_file.empty() ? "" : " (" + stage.contract->plugin_file + ")") +
                                     " has port '" +
                                     port.name + "' of packet kind '" + port.kind +
                                     "', which no loaded plugin declares" +
                                     did_you_mean(port.kind, registry.kind_names()) +
                                     "; load the plugin that owns the kind (`flowrun describe kinds` lists them)"});
  }
}

// "; 'tile' is one image tile: ..., 'features' is ...": what each side carries, for kinds that are declared.
std::string kind_summaries(const std::string& wanted, const std::string& given) {
  std::string text;
  for (const auto& kind : {wanted, given})
    if (const PacketKind* declared = Registry::instance().find_kind(kind))
      text += (text.empty() ? "; '" : ", '") + kind + "' is " + declared->summary;
  return text;
}

void connect_inputs(GraphSpec& spec, std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> ids;
  for (const auto& s : spec.stages) ids.push_back(s.id);

  for (std::size_t to = 0; to < spec.stages.size(); ++to) {
    const StageSpec& stage = spec.stages[to];
    if (!stage.contract) continue;
    const StageContract& contract = *stage.contract;
    auto report = [&](const SourcePos& pos, std::string message) {
      diagnostics.push_back({pos, stage.id, std::move(message)});
    };
    if (contract.is_source()) {
      if (!stage.inputs.empty())
        report(stage.inputs.front().pos, "stage type '" + stage.type + "' is a source and takes no input");
      continue;
    }
    if (stage.inputs.empty()) {
      if (!stage.input_key_given)  // a malformed input is reported where it was read
        report(stage.pos, "stage type '" + stage.type + "' needs an input: add input = \"<stage id>\"");
      continue;
    }
    const auto required = static_cast<std::size_t>(
        std::find_if(contract.inputs.begin(), contract.inputs.end(), [](const PortSpec& p) { return p.optional; }) -
        contract.inputs.begin());
    if (contract.inputs.size() > 1 && (stage.inputs.size() < required || stage.inputs.size() > contract.inputs.size()))
      report(stage.inputs.front().pos, "stage type '" + stage.type + "' takes " +
                                           (required == contract.inputs.size() ? "" : std::to_string(required) + " to ") +
                                           std::to_string(contract.inputs.size()) + " inputs (" + port_list(contract.inputs) +
                                           ", in this order), got " + std::to_string(stage.inputs.size()));

    for (std::size_t i = 0; i < stage.inputs.size(); ++i) {
      const InputRef& ref = stage.inputs[i];
      const std::size_t to_port = contract.inputs.size() > 1 ? std::min(i, contract.inputs.size() - 1) : 0;
      const PortSpec& in_port = contract.inputs[to_port];
      const std::size_t from = spec.find_stage(ref.stage);
      if (from == std::string::npos) {
        report(ref.pos, "unknown input '" + ref.stage + "'" + did_you_mean(ref.stage, ids));
        continue;
      }
      const StageSpec& upstream = spec.stages[from];
      if (!upstream.contract) continue;  // its unknown type is reported already
      const StageContract& up = *upstream.contract;
      if (up.is_sink()) {
        report(ref.pos, "input '" + ref.stage + "' is a sink (stage type '" + upstream.type + "') and has no output");
        continue;
      }
      std::size_t from_port = 0;
      if (!ref.port.empty()) {
        const PortSpec* port = up.find_output(ref.port);
        if (!port) {
          report(ref.pos, "stage '" + ref.stage + "' has no output '" + ref.port + "' (outputs: " + port_list(up.outputs) + ")");
          continue;
        }
        from_port = static_cast<std::size_t>(port - up.outputs.data());
      }
      const PortSpec& out_port = up.outputs[from_port];
      if (in_port.kind != kAnyKind && in_port.kind != out_port.kind) {
        report(ref.pos, "input '" + in_port.name + "' expects packets of kind '" + in_port.kind + "', but stage '" +
                            upstream.id + "' (" + upstream.type + ") output '" + out_port.name + "' produces '" +
                            out_port.kind + "'" + kind_summaries(in_port.kind, out_port.kind));
        continue;
      }
      spec.edges.push_back({from, from_port, to, to_port});
    }
  }
}

void order_topologically(GraphSpec& spec, std::vector<Diagnostic>& diagnostics) {
  const std::size_t n = spec.stages.size();
  std::vector<std::size_t> indegree(n, 0);
  for (const auto& e : spec.edges) ++indegree[e.to];
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < n; ++i)
    if (indegree[i] == 0) ready.push_back(i);
  spec.topo_order.clear();
  for (std::size_t head = 0; head < ready.size(); ++head) {
    const std::size_t s = ready[head];
    spec.topo_order.push_back(s);
    for (const auto& e : spec.edges)
      if (e.from == s && --indegree[e.to] == 0) ready.push_back(e.to);
  }
  if (spec.topo_order.size() == n) return;

  // Some stages remain, each with a remaining predecessor: walking predecessors must close a cycle.
  std::size_t current = n;
  for (std::size_t i = 0; i < n && current == n; ++i)
    if (indegree[i] > 0) current = i;
  std::vector<std::size_t> walk;
  std::vector<bool> seen(n, false);
  while (!seen[current]) {
    seen[current] = true;
    walk.push_back(current);
    for (const auto& e : spec.edges)
      if (e.to == current && indegree[e.from] > 0) {
        current = e.from;
        break;
      }
  }
  // `walk` ends with the cycle from `current` backwards; reverse it into the direction data flows.
  std::vector<std::size_t> path(std::find(walk.begin(), walk.end(), current), walk.end());
  std::reverse(path.begin(), path.end());
  std::rotate(path.begin(), std::min_element(path.begin(), path.end()), path.end());
  path.push_back(path.front());
  std::string text;
  for (std::size_t i = 0; i < path.size(); ++i) text += (i ? " -> " : "") + spec.stages[path[i]].id;
  // Reported where the cycle closes: the input of its first stage (in file order) that names its last one.
  const StageSpec& first = spec.stages[path.front()];
  const std::string& last = spec.stages[path[path.size() - 2]].id;
  SourcePos where = first.pos;
  for (const auto& ref : first.inputs)
    if (ref.stage == last) {
      where = ref.pos;
      break;
    }
  diagnostics.push_back({where, first.id, "the graph has a cycle: " + text + " (this input closes it)"});
}

void check_unconsumed_outputs(const GraphSpec& spec, std::vector<Diagnostic>& diagnostics) {
  std::vector<std::string> ids;
  for (const auto& s : spec.stages) ids.push_back(s.id);
  // An input naming an unknown stage is reported with its nearest id; that stage counts as read, so that
  // the typo is not reported a second time as an unconsumed output.
  const auto names = [&](const InputRef& ref, const std::string& id) {
    return ref.stage == id || (spec.find_stage(ref.stage) == std::string::npos && nearest_name(ref.stage, ids) == id);
  };
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    const StageSpec& stage = spec.stages[s];
    if (!stage.contract) continue;
    for (std::size_t port = 0; port < stage.contract->outputs.size(); ++port) {
      const PortSpec& out = stage.contract->outputs[port];
      if (out.may_be_unused) continue;
      // An input naming this port counts even when it was rejected for another, already reported reason.
      const bool used = std::any_of(spec.stages.begin(), spec.stages.end(), [&](const StageSpec& reader) {
        return std::any_of(reader.inputs.begin(), reader.inputs.end(), [&](const InputRef& ref) {
          if (!names(ref, stage.id)) return false;
          if (ref.port.empty()) return port == 0;
          return ref.port == out.name || !stage.contract->find_output(ref.port);
        });
      });
      if (!used)
        diagnostics.push_back({stage.pos, stage.id,
                               "output '" + out.name + "' (kind '" + out.kind +
                                   "') is not consumed by any stage: add a stage with input = \"" + stage.id + "\""});
    }
  }
}

// An ordered input gets packets in source order, which the runtime can restore only along a single chain
// from one source through stages that emit at most one packet per input: sequence numbers are counted
// per source, so two streams into one ordered port would collide.
void check_ordering_promises(const GraphSpec& spec, std::vector<Diagnostic>& diagnostics) {
  const auto incoming = [&](std::size_t stage, std::optional<std::size_t> port) {
    std::vector<const Edge*> edges;
    for (const auto& e : spec.edges)
      if (e.to == stage && (!port || e.to_port == *port)) edges.push_back(&e);
    return edges;
  };
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    const StageSpec& stage = spec.stages[s];
    if (!stage.contract) continue;
    for (std::size_t port = 0; port < stage.contract->inputs.size(); ++port) {
      const PortSpec& in = stage.contract->inputs[port];
      if (!in.ordered) continue;
      const auto edges = incoming(s, port);
      if (edges.empty()) continue;
      const auto report = [&](std::string message) {
        diagnostics.push_back({stage.inputs.empty() ? stage.pos : stage.inputs.front().pos, stage.id,
                               "input '" + in.name + "' promises source order, " + message});
      };
      if (edges.size() > 1) {
        report("so it takes exactly one input, got " + std::to_string(edges.size()));
        continue;
      }
      for (std::size_t up = edges.front()->from;;) {
        const StageSpec& upstream = spec.stages[up];
        const StageContract& c = *upstream.contract;
        if (c.is_source()) break;
        if (c.cardinality != Cardinality::OneToOne || c.batched) {
          report("but upstream stage '" + upstream.id + "' (" + upstream.type +
                 ") may emit several packets per item (or batches), so the order cannot be restored");
          break;
        }
        const auto feeding = incoming(up, std::nullopt);
        if (feeding.empty()) break;  // its own input is broken, and reported already
        if (feeding.size() > 1) {
          report("but upstream stage '" + upstream.id + "' merges " + std::to_string(feeding.size()) +
                 " inputs, so there is no single source order");
          break;
        }
        up = feeding.front()->from;
      }
    }
  }
}

class StageRuleCheck final : public RuleCheck {
 public:
  StageRuleCheck(const GraphSpec& spec, std::size_t index, bool have_edges, std::vector<Diagnostic>& diagnostics)
      : spec_(spec), stage_(spec.stages[index]), index_(index), have_edges_(have_edges), diagnostics_(diagnostics) {}
  const Value& param(const std::string& name) const override {
    static const Value unset;
    const auto it = stage_.params.find(name);
    return it == stage_.params.end() ? unset : it->second;
  }
  bool was_written(const std::string& name) const override { return stage_.param_pos.count(name) > 0; }
  bool input_connected(std::size_t port) const override {
    return !have_edges_ || std::any_of(spec_.edges.begin(), spec_.edges.end(),
                                       [&](const Edge& e) { return e.to == index_ && e.to_port == port; });
  }
  bool written_by_earlier_phase(const std::string& path) const override {
    if (stage_.phase == 0) return false;
    const auto relative = std::filesystem::path(path).lexically_normal().lexically_relative(spec_.experiment.output_dir.lexically_normal());
    return !relative.empty() && *relative.begin() != "..";
  }
  void error(const std::string& param, std::string message) override {
    const auto it = stage_.param_pos.find(param);
    diagnostics_.push_back({it == stage_.param_pos.end() ? stage_.pos : it->second, stage_.id, std::move(message)});
  }

 private:
  const GraphSpec& spec_;
  const StageSpec& stage_;
  std::size_t index_;
  bool have_edges_;
  std::vector<Diagnostic>& diagnostics_;
};

}  // namespace

void check_contract_rules(const GraphSpec& spec, bool have_edges, std::vector<Diagnostic>& diagnostics) {
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const StageSpec& stage = spec.stages[i];
    if (!stage.contract || stage.contract->rules.empty()) continue;
    if (std::any_of(diagnostics.begin(), diagnostics.end(), [&](const Diagnostic& d) { return d.stage == stage.id; }))
      continue;
    StageRuleCheck check(spec, i, have_edges, diagnostics);
    for (const auto& rule : stage.contract->rules) {
      try {
        rule.check(check);
      } catch (const std::exception& e) {
        check.error("", "rule '" + rule.doc + "' could not be checked: " + e.what());
      }
    }
  }
}

// Phases from `after`: a stage runs in the phase after the latest stage it waits for, and in the phase of its
// inputs (packets do not cross phases). Needs the edges; a cycle through `after` is reported.
void assign_phases(GraphSpec& spec, std::vector<Diagnostic>& diagnostics) {
  const std::size_t n = spec.stages.size();
  std::vector<std::vector<std::size_t>> waits(n);
  for (std::size_t i = 0; i < n; ++i) {
    StageSpec& stage = spec.stages[i];
    for (const auto& id : stage.after) {
      const std::size_t other = spec.find_stage(id);
      if (other == std::string::npos) {
        std::vector<std::string> ids;
        for (const auto& s : spec.stages) ids.push_back(s.id);
        diagnostics.push_back({stage.after_pos, stage.id, "'after' names '" + id + "', which is not a stage of the graph" + did_you_mean(id, ids)});
      } else if (other == i) {
        diagnostics.push_back({stage.after_pos, stage.id, "a stage cannot run after itself"});
      } else {
        waits[i].push_back(other);
      }
    }
  }
  std::vector<std::size_t> phase(n, 0);
  bool changed = true;
  for (std::size_t round = 0; changed && round <= n; ++round) {
    changed = false;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t p = 0;
      for (const std::size_t w : waits[i]) p = std::max(p, phase[w] + 1);
      for (const auto& e : spec.edges)
        if (e.to == i) p = std::max(p, phase[e.from]);
      if (p != phase[i]) phase[i] = p, changed = true;
    }
  }
  if (changed) {  // still growing after n rounds: a cycle
    for (std::size_t i = 0; i < n; ++i)
      if (!waits[i].empty() && phase[i] > n) {
        diagnostics.push_back({spec.stages[i].after_pos, spec.stages[i].id,
                               "'after' makes a cycle: this stage waits for a stage that depends on it"});
        break;
      }
    return;
  }
  for (const auto& e : spec.edges)
    if (phase[e.from] != phase[e.to]) {
      const StageSpec& to = spec.stages[e.to];
      const StageSpec& from = spec.stages[e.from];
      const auto ref = std::find_if(to.inputs.begin(), to.inputs.end(), [&](const InputRef& r) { return r.stage == from.id; });
      diagnostics.push_back({ref != to.inputs.end() ? ref->pos : to.pos, to.id,
                             "stage '" + to.id + "' runs in phase " + std::to_string(phase[e.to] + 1) + " ('after'), but its input '" +
                                 from.id + "' in phase " + std::to_string(phase[e.from] + 1) +
                                 ": packets do not cross phases; give '" + from.id + "' the same 'after'"});
    }
  spec.phases = 1;
  for (std::size_t i = 0; i < n; ++i) {
    spec.stages[i].phase = phase[i];
    spec.phases = std::max(spec.phases, phase[i] + 1);
  }
}

void validate_structure(GraphSpec& spec, std::vector<Diagnostic>& diagnostics, bool require_consumed_outputs) {
  check_port_kinds(spec, diagnostics);
  connect_inputs(spec, diagnostics);
  order_topologically(spec, diagnostics);
  assign_phases(spec, diagnostics);
  if (require_consumed_outputs) check_unconsumed_outputs(spec, diagnostics);
  const std::size_t cycle_free = spec.topo_order.size();
  if (cycle_free == spec.stages.size()) check_ordering_promises(spec, diagnostics);
  const bool all_known = std::all_of(spec.stages.begin(), spec.stages.end(), [](const StageSpec& s) { return s.contract; });
  const bool has_source = std::any_of(spec.stages.begin(), spec.stages.end(),
                                      [](const StageSpec& s) { return s.contract && s.contract->is_source(); });
  if (all_known && !spec.stages.empty() && !has_source)
    diagnostics.push_back({{spec.stages.front().pos.file, 1, 1}, "", "the graph has no source stage, so nothing would flow"});
}

}  // namespace histoflow::detail
