#pragma once
// Structural checks on a graph whose stages and parameters are already parsed: inputs that exist,
// packet kinds that match, cycles, unconsumed outputs, ordering promises. Fills edges and topo_order.
#include <vector>

#include "histoflow/graph.hpp"

namespace histoflow::detail {
void validate_structure(GraphSpec& spec, std::vector<Diagnostic>& diagnostics);
}
