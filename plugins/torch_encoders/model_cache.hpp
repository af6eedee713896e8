#pragma once
// One loaded model per process for each (backbone, weights, device, precision): torch_encoder stages that
// encode with the same model (a train and a test split, say) share its memory and its loading time.
#include <filesystem>
#include <memory>
#include <string>

#include "histoflow/torch_encoders/backbone.hpp"

namespace histoflow::torch_encoders {

struct ModelRequest {
  const BackboneSpec* spec = nullptr;
  std::filesystem::path weights_file;  // empty with synthetic weights
  bool synthetic = false;
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
};

struct SharedModel {
  // Ready for inference: on the device (its copies finished, so any CUDA stream may use it), in the dtype, in
  // eval mode. The encoder asks for fp32 on CUDA and runs reduced precision under autocast.
  std::shared_ptr<Backbone> backbone;
  std::string identity;                // SHA-256 of the weights file, or the synthetic initialisation's name
};

// Loads the model, or hands out the one an equal earlier request loaded while any stage still holds it.
// A weights file is the same file while its path, size and modification time are. Thread-safe; inference
// on a shared model is (no stage changes its parameters).
SharedModel shared_model(const ModelRequest& request);

// How many models this process really loaded (not handed out again): for tests.
std::size_t models_loaded();

}  // namespace histoflow::torch_encoders
