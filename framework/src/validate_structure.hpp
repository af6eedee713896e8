#pragma once
// Structural checks on a graph whose stages and parameters are already parsed: inputs that exist,
// packet kinds that match, cycles, unconsumed outputs, ordering promises. Fills edges and topo_order.
#include <vector>

#include "histoflow/graph.hpp"

namespace histoflow::detail {
// `require_consumed_outputs`: false for a part of a graph (select_stage_set), whose left-out readers leave outputs unread.
void validate_structure(GraphSpec& spec, std::vector<Diagnostic>& diagnostics, bool require_consumed_outputs = true);
// Each contract's rules (StageContract::rules) on every stage that has no problem reported yet (a rule on
// a stage whose parameters are already wrong would only add knock-on errors). `have_edges`: false for
// the stage harness, where every input counts as connected.
void check_contract_rules(const GraphSpec& spec, bool have_edges, std::vector<Diagnostic>& diagnostics);
}
