#pragma once
// Small helpers for tests that build graphs from TOML text.
#include <filesystem>
#include <string>
#include <vector>

#include "histoflow/graph.hpp"
#include "histoflow/plugins.hpp"
#include "histoflow/runtime.hpp"
#include "support/fresh_folder.hpp"

namespace histoflow::testing {

// Loads the core plugin (once per process) and registers the test stages.
PluginLoader& shared_loader();

// Prefixes the standard header (schema_version, [experiment] with the given output folder).
// `run_extra` adds lines to the [run] table.
std::string graph_text(const std::string& stages, const std::filesystem::path& output, std::int64_t max_in_flight = 16,
                       const std::string& run_extra = "");

// Loads text as a graph; fails the test with every diagnostic when it is invalid.
GraphSpec load_valid(const std::string& text);
std::vector<Diagnostic> diagnostics_of(const std::string& text, const std::vector<Override>& overrides = {});

RunResult run_quietly(const GraphSpec& spec, RunOptions options = {});

}  // namespace histoflow::testing
