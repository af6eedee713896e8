#pragma once
#include "histoflow/registry.hpp"

namespace histoflow::mil {
void register_mil_cv(Registry& registry);
}
