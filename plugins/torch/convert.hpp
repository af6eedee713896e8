#pragma once
// Checkpoint conversion: any supported weights file to safetensors, optionally reduced to one backbone's
// tensors under their plain names (nesting unwrapped, prefix stripped, heads dropped, strictly checked).
#include <filesystem>
#include <string>

namespace histoflow::torchenc {

struct ConversionReport {
  std::size_t tensors = 0;
  std::string nesting;        // where the state dict sat in the source
  std::string prefix;         // the prefix stripped ("" when none, or when no backbone was given)
  std::string source_sha256;
};

ConversionReport convert_to_safetensors(const std::filesystem::path& source, const std::filesystem::path& target,
                                        const std::string& backbone = "");

}  // namespace histoflow::torchenc
