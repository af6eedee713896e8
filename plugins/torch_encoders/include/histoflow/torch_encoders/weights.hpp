#pragma once
// Weights as people publish them: safetensors, or PyTorch .pth/.pt checkpoints (zip or legacy pickle) with
// nested dictionaries (model, state_dict, teacher) and prefixes (teacher.backbone., module., backbone.).
// Loading is strict: every missing, unexpected or mis-shaped key is listed in one error naming the file.
#include <filesystem>
#include <map>
#include <string>

#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::torch_encoders {

using StateDict = std::map<std::string, torch::Tensor>;

struct LoadedWeights {
  StateDict tensors;        // as found in the file (nesting unwrapped, prefixes kept)
  std::string sha256;       // of the file: the model's identity in every output
  std::string format;       // "safetensors" or "pytorch"
  std::string nesting;      // e.g. "model" when the tensors sat under checkpoint["model"]
  std::map<std::string, std::string> metadata;  // a safetensors file's __metadata__
};

LoadedWeights read_weights(const std::filesystem::path& file);

// Chooses the prefix under which the backbone's keys are found, then copies the tensors into the module.
// Returns the prefix used ("" when none).
std::string load_into(Backbone& backbone, const LoadedWeights& weights, const std::filesystem::path& file);
// load_into's strict match without the copy (the backbone still takes its position grid from the checkpoint):
// whether a checkpoint fits, for files too large to load just to find out. Returns the prefix; throws as load_into.
std::string check_fits(Backbone& backbone, const LoadedWeights& weights, const std::filesystem::path& file);

// Deterministic pseudo-random weights ("histoflow-init-v1"), identical to tools/parity/histoflow_init.py:
// for tests and benchmarks, where real weights are neither needed nor available.
void deterministic_init(torch::nn::Module& module);
torch::Tensor deterministic_values(const std::string& name, const std::vector<std::int64_t>& shape);
std::uint64_t deterministic_word(const std::string& name, std::uint64_t index);  // z_index of NAME's stream
torch::Tensor deterministic_bytes(const std::string& name, const std::vector<std::int64_t>& shape);  // uint8

}  // namespace histoflow::torch_encoders
