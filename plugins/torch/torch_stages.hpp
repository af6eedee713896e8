#pragma once
#include "histoflow/registry.hpp"

namespace histoflow::torchenc {
void register_torch_encoder(Registry& registry);
}
