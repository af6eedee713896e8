#pragma once
// Checkpoint conversion: any supported weights file to safetensors, optionally reduced to one backbone's
// tensors under their plain names (nesting unwrapped, prefix stripped, heads dropped, strictly checked).
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "histoflow/torch_encoders/safetensors.hpp"

namespace histoflow::torch_encoders {

struct ConversionReport {
  std::size_t tensors = 0;
  std::string nesting;        // where the state dict sat in the source
  std::string prefix;         // the prefix stripped ("" when none, or when no backbone was given)
  std::string source_sha256;
};

// A tensor as safetensors bytes (on the CPU, contiguous, its own dtype); throws for dtypes safetensors lacks.
SafetensorsBlob tensor_blob(const torch::Tensor& tensor);
// Tensors written as one safetensors file, atomically.
void write_tensor_file(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

ConversionReport convert_to_safetensors(const std::filesystem::path& source, const std::filesystem::path& target,
                                        const std::string& backbone = "");

}  // namespace histoflow::torch_encoders
