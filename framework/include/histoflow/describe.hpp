#pragma once
#include <string>

#include "histoflow/contract.hpp"

namespace histoflow {
// Human-readable description of a stage: ports, parameters with defaults and docs, an example.
std::string describe_stage(const StageContract& contract);
}  // namespace histoflow
