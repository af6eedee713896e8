#pragma once
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "histoflow/graph.hpp"
#include "histoflow/plugins.hpp"

namespace histoflow::cli {

// The folders given with `--plugins DIR` (main.cpp takes them out of the arguments, wherever they stand).
std::vector<std::filesystem::path>& plugin_folders_from_command_line();
// Loads flowrun's plugin folder, HISTOFLOW_PLUGIN_PATH's folders, then the --plugins ones; prints warnings and
// errors (and notes unless quiet). False when a plugin failed to load.
bool load_plugins(PluginLoader& loader, bool quiet_notes = true);

// Loads the plugins and the graph with its --set overrides, and validates it; prints every diagnostic. False when
// the graph is invalid.
bool load_graph_reporting(const std::string& file, const ParsedArgs& parsed, PluginLoader& loader, GraphLoad& load);

// Each returns the process exit status: 0 success, 1 run errors, 2 invalid graph or usage, 130 cancelled.
int command_run(const std::vector<std::string>& args);
int command_validate(const std::vector<std::string>& args);
int command_plugins(const std::vector<std::string>& args);
int command_describe(const std::vector<std::string>& args);
int command_graph(const std::vector<std::string>& args);
int command_trace(const std::vector<std::string>& args);
int command_cache(const std::vector<std::string>& args);  // ls | verify | gc
int command_backbones(const std::vector<std::string>& args);  // backbones_command.cpp
int command_submit(const std::vector<std::string>& args);     // submit_command.cpp
int command_status(const std::vector<std::string>& args);     // status_command.cpp
int command_report(const std::vector<std::string>& args);     // report_command.cpp
int describe_backbone(const std::string& name);               // `flowrun describe backbone NAME`
// Writes RUN_DIR/report.html and prints its path and what it lacks; false (with the reason on stderr) when it
// could not be written. After a run, and by `flowrun report`.
bool print_report(const std::filesystem::path& run_folder, std::ostream& out);

bool wants_help(const std::vector<std::string>& args);

}  // namespace histoflow::cli
