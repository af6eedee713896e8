#pragma once
// run_summary.json: what a run did, written into the experiment's output folder when it ends.
#include "histoflow/graph.hpp"
#include "histoflow/runtime.hpp"

namespace histoflow::detail {

// Replaces the file atomically; throws when it cannot be written.
void write_run_summary(const GraphSpec& spec, const RunOptions& options, const RunResult& result);
// The same at the end of a run: a summary that cannot be written fails a run that had completed.
void finish_with_run_summary(const GraphSpec& spec, const RunOptions& options, RunResult& result);

}  // namespace histoflow::detail
