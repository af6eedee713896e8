#pragma once
// A trained fold model as safetensors: every parameter as F32 under its module path, the input
// standardisation as input_mean / input_std, the aggregator's name and options in the metadata, so the
// model can be rebuilt and its weights loaded.
#include <filesystem>
#include <map>
#include <string>

#include "trainer.hpp"

namespace histoflow::mil {

// Writes atomically; returns the SHA-256 of the file.
std::string save_aggregator(const std::filesystem::path& file, const TrainedModel& trained,
                            const std::map<std::string, std::string>& metadata);

}  // namespace histoflow::mil
