#pragma once
// The built-in aggregators, one file each; aggregator_registry.cpp registers them under these names.
#include "histoflow/mil/aggregator.hpp"

namespace histoflow::mil {

std::shared_ptr<Aggregator> make_mean_mlp(const AggregatorOptions& options);
std::shared_ptr<Aggregator> make_gated_attention(const AggregatorOptions& options);
std::shared_ptr<Aggregator> make_clam_sb(const AggregatorOptions& options);
std::shared_ptr<Aggregator> make_transmil(const AggregatorOptions& options);
std::shared_ptr<Aggregator> make_transformer(const AggregatorOptions& options);

}  // namespace histoflow::mil
