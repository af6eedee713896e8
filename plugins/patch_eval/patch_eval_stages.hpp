#pragma once
// The patch-level benchmark plugin: k-NN and linear probing of frozen features on patch datasets.
#include "histoflow/registry.hpp"

namespace histoflow::patch_eval {

void register_knn_eval(Registry& registry);
void register_linear_probe(Registry& registry);

}  // namespace histoflow::patch_eval
