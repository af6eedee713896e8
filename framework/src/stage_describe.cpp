#include <sstream>

#include "histoflow/describe.hpp"

namespace histoflow {

namespace {
std::string concurrency_text(const StageContract& c) {
  switch (c.concurrency) {
    case Concurrency::Serial: return "serial (one call at a time)";
    case Concurrency::Limited: return "up to " + std::to_string(c.max_concurrency) + " calls at once";
    case Concurrency::Unlimited: return "unlimited (as many calls as threads)";
  }
  return "?";
}
}  // namespace

std::string describe_stage(const StageContract& c) {
  std::ostringstream out;
  out << c.type << " — " << c.summary << "\n";
  if (!c.doc.empty()) out << "\n" << c.doc << "\n";
  out << "\nrole:        " << (c.is_source() ? "source" : c.is_sink() ? "sink" : "transform") << "\n";
  out << "concurrency: " << concurrency_text(c) << "\n";
  out << "cardinality: " << (c.cardinality == Cardinality::OneToOne ? "one-to-one (at most one output per input)"
                                                                     : "one-to-many") << "\n";
  if (c.batched) out << "batched:     yes (the framework groups inputs; see parameter 'batch')\n";
  if (c.resumable) out << "resumable:   yes (finished results are kept; a rerun skips the work that led to them)\n";
  if (c.needs_every_item) out << "scale-out:   needs every item (runs once, after the shards: --stage-set evaluate)\n";
  if (c.shardable) out << "scale-out:   shardable (--shard I/N emits shard I's items; each item locked while in flight)\n";
  if (!c.plugin_file.empty()) out << "plugin:      " << c.plugin_file << "\n";
  out << "\ninputs:\n";
  if (c.inputs.empty()) out << "  (none: this is a source)\n";
  for (const auto& p : c.inputs)
    out << "  " << p.name << " <" << p.kind << ">" << (p.ordered ? " [ordered]" : "") << (p.optional ? " [optional]" : "") << "  " << p.doc << "\n";
  out << "outputs:\n";
  if (c.outputs.empty()) out << "  (none: this is a sink)\n";
  for (const auto& p : c.outputs)
    out << "  " << p.name << " <" << p.kind << ">" << (p.may_be_unused ? " [may be unused]" : "") << (p.gated ? " [gated]" : "") << "  " << p.doc << "\n";
  out << "parameters:\n";
  if (c.params.empty()) out << "  (none)\n";
  for (const auto& p : c.params) {
    out << "  " << p.name << " (" << param_type_name(p.type);
    if (p.required) out << ", required";
    else out << ", default " << value_to_string(p.default_value);
    if (p.min || p.max) out << ", range " << param_range_text(p);
    if (!p.affects_output) out << ", does not change results";
    if (const auto choices = p.allowed(); !choices.empty()) {
      out << ", one of";
      for (const auto& choice : choices) out << " " << choice;
    }
    out << ")\n      " << p.doc << "\n";
  }
  if (!c.rules.empty()) {
    out << "rules (checked by flowrun validate):\n";
    for (const auto& rule : c.rules) out << "  - " << rule.doc << "\n";
  }
  if (!c.example.empty()) out << "\nexample:\n" << c.example << (c.example.back() == '\n' ? "" : "\n");
  return out.str();
}

}  // namespace histoflow
