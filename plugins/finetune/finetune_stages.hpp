#pragma once
// The finetune plugin's stages.
#include <string>

#include "histoflow/registry.hpp"

namespace histoflow::finetune {

void register_dinov2_finetune(Registry& registry);

// "2h", "90m", "1h30m", "3600s" (decimals allowed) in seconds; "" is 0 (no limit). Throws std::invalid_argument
// naming the text otherwise.
double parse_duration(const std::string& text);

}  // namespace histoflow::finetune
