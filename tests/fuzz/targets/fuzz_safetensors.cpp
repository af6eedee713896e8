#include <exception>
#include <string>

#include "fuzz_targets.hpp"
#include "histoflow/torch_encoders/safetensors.hpp"

namespace histoflow::fuzz {

// A header that parses must describe byte ranges inside the file: reading each tensor's bytes must stay in bounds.
int fuzz_safetensors(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto header = torch_encoders::parse_safetensors(bytes, "fuzz.safetensors");
    std::size_t sum = 0;
    for (const auto& [name, entry] : header.tensors)
      for (std::uint64_t i = entry.begin; i < entry.end; ++i) sum += static_cast<unsigned char>(bytes.at(header.data_start + i));
    (void)sum;
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace histoflow::fuzz
