#include <exception>

#include "fuzz_input_file.hpp"
#include "fuzz_targets.hpp"
#include "histoflow/sealed_file.hpp"

namespace histoflow::fuzz {

// The header block of a cached file, and the checksum over what follows it.
int fuzz_sealed_header(const std::uint8_t* data, std::size_t size) {
  const auto file = write_input_file(data, size, "sealed.bin");
  try {
    (void)read_sealed_header(file);
  } catch (const std::exception&) {
  }
  (void)verify_sealed_file(file);  // reports problems as text, never throws
  return 0;
}

}  // namespace histoflow::fuzz
