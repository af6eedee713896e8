#pragma once
#include <string>
#include <vector>

namespace histoflow::cli {

// Each returns the process exit status: 0 success, 1 run errors, 2 invalid graph or usage, 130 cancelled.
int command_run(const std::vector<std::string>& args);
int command_validate(const std::vector<std::string>& args);
int command_plugins(const std::vector<std::string>& args);
int command_describe(const std::vector<std::string>& args);
int command_graph(const std::vector<std::string>& args);
int command_trace(const std::vector<std::string>& args);
int command_cache(const std::vector<std::string>& args);  // ls | verify | gc
int command_backbones(const std::vector<std::string>& args);  // backbones_command.cpp
int describe_backbone(const std::string& name);               // `flowrun describe backbone NAME`

bool wants_help(const std::vector<std::string>& args);

}  // namespace histoflow::cli
