#pragma once
#include "histoflow/registry.hpp"

namespace histoflow::torch_encoders {
void register_torch_encoder(Registry& registry);
}
