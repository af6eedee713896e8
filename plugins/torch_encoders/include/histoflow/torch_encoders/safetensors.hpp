#pragma once
// safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
// byte range, then the raw data. The header is checked against the file before anything is read: a header
// that lies (ranges outside the data, overlapping or gapped ranges, sizes that disagree with the shape, element
// counts that overflow) or exceeds an input limit (header bytes, tensors, dimensions: input_limits.hpp) is an
// error naming the file and the tensor.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace histoflow::torch_encoders {

struct SafetensorsEntry {
  std::string dtype;                // "F32", "F16", "BF16", "F64", "I64", "I32", "U8", ...
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;          // byte offsets relative to the start of the data section
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;     // absolute offset of the data section in the file
};

std::size_t safetensors_dtype_size(const std::string& dtype);  // 0 for unknown dtypes

// Parses and validates the header of an in-memory file.
SafetensorsHeader parse_safetensors(const std::string& bytes, const std::string& name);

// Writes tensors (contiguous little-endian bytes) as a safetensors file, atomically.
struct SafetensorsBlob {
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::string bytes;
};
void write_safetensors(const std::filesystem::path& file, const std::map<std::string, SafetensorsBlob>& tensors,
                       const std::map<std::string, std::string>& metadata);

}  // namespace histoflow::torch_encoders
