#include "histoflow/torch_encoders/safetensors.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"
#include "histoflow/input_limits.hpp"

namespace histoflow::torch_encoders {

std::size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

SafetensorsHeader parse_safetensors(const std::string& bytes, const std::string& name) {
  const auto fail = [&](const std::string& why) -> std::runtime_error {
    return std::runtime_error("invalid safetensors file '" + name + "': " + why);
  };
  if (bytes.size() < 8) throw fail("shorter than its 8-byte header length");
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = header_length << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  if (header_length > bytes.size() - 8) throw fail("the header claims " + std::to_string(header_length) + " bytes, the file has " + std::to_string(bytes.size() - 8) + " after the length");
  if (header_length > input_limit(InputLimit::SafetensorsHeaderBytes))
    throw fail(input_limit_message(InputLimit::SafetensorsHeaderBytes, header_length, "its header"));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_length));
  } catch (const std::exception& e) {
    throw fail(std::string("the header is not JSON: ") + e.what());
  }
  if (!header.is_object()) throw fail("the header is not a JSON object");
  const std::uint64_t described = header.size() - (header.contains("__metadata__") ? 1 : 0);
  if (described > input_limit(InputLimit::SafetensorsTensors))
    throw fail(input_limit_message(InputLimit::SafetensorsTensors, described, "its header"));
  SafetensorsHeader out;
  out.data_start = 8 + header_length;
  const std::uint64_t data_size = bytes.size() - out.data_start;
  for (auto& item : header.items()) {
    const std::string& key = item.key();  // named: lambdas cannot capture structured bindings before clang 16
    auto& value = item.value();
    if (key == "__metadata__") {
      if (!value.is_object()) throw fail("__metadata__ is not an object");
      // The format's metadata maps strings to strings; other scalars are kept as JSON text, nested values refused
      // (they would only be printed, and printing a deeply nested value recurses).
      for (auto& [k, v] : value.items()) {
        if (v.is_structured()) throw fail("__metadata__ '" + k + "' is not a string");
        out.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
      continue;
    }
    const auto bad = [&](const std::string& why) { return fail("tensor '" + key + "': " + why); };
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets"))
      throw bad("needs dtype, shape and data_offsets");
    SafetensorsEntry e;
    const auto& dtype = value.at("dtype");
    if (!dtype.is_string()) throw bad("dtype is not a string");
    e.dtype = dtype.get<std::string>();
    const std::size_t element = safetensors_dtype_size(e.dtype);
    if (element == 0) throw bad("unknown dtype '" + e.dtype + "'");
    const auto& shape = value.at("shape");
    if (!shape.is_array()) throw bad("shape is not an array of integers");
    check_input_limit(InputLimit::TensorDimensions, shape.size(), "invalid safetensors file '" + name + "': tensor '" + key + "'");
    std::uint64_t count = 1;
    for (const auto& d : shape) {
      if (!d.is_number_integer() || (d.is_number_unsigned() ? d.get<std::uint64_t>() > INT64_MAX : d.get<std::int64_t>() < 0))
        throw bad("shape has a negative, too large or non-integer extent");
      e.shape.push_back(d.get<std::int64_t>());
      // An overflowing product could wrap to the size of some byte range (2^62 x 4 floats is "0 bytes").
      if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(e.shape.back()), &count))
        throw bad("shape has more elements than any file holds");
    }
    std::uint64_t needed = 0;
    if (__builtin_mul_overflow(count, element, &needed)) throw bad("shape has more elements than any file holds");
    const auto& offsets = value.at("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw bad("data_offsets must be two non-negative integers");
    e.begin = offsets[0].get<std::uint64_t>();
    e.end = offsets[1].get<std::uint64_t>();
    if (e.end < e.begin || e.end > data_size)
      throw bad("byte range [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + ") lies outside the " +
                std::to_string(data_size) + " data bytes (truncated file or lying header)");
    if (e.end - e.begin != needed)
      throw bad("byte range holds " + std::to_string(e.end - e.begin) + " bytes, but " + e.dtype + " with this shape needs " +
                std::to_string(needed));
    out.tensors.emplace(key, std::move(e));
  }
  // Ranges must tile the data section: no overlap, no gap (as the format requires).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const auto& [key, e] : out.tensors)
    if (e.end > e.begin) ranges.emplace_back(e.begin, e.end);
  std::sort(ranges.begin(), ranges.end());
  std::uint64_t cursor = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin != cursor) throw fail(begin < cursor ? "tensor byte ranges overlap" : "a gap lies between tensor byte ranges");
    cursor = end;
  }
  if (cursor != data_size) throw fail("the data section has " + std::to_string(data_size - cursor) + " bytes no tensor describes");
  return out;
}

void write_safetensors(const std::filesystem::path& file, const std::map<std::string, SafetensorsBlob>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, blob] : tensors) {
    header[name] = {{"dtype", blob.dtype}, {"shape", blob.shape}, {"data_offsets", {offset, offset + blob.bytes.size()}}};
    offset += blob.bytes.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  AtomicFile out(file);
  for (int i = 0; i < 8; ++i) out.stream().put(static_cast<char>(static_cast<std::uint64_t>(text.size()) >> (8 * i)));
  out.stream() << text;
  for (const auto& [name, blob] : tensors) out.stream().write(blob.bytes.data(), static_cast<std::streamsize>(blob.bytes.size()));
  out.commit();
}

}  // namespace histoflow::torch_encoders
