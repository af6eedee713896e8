#include <cstdlib>
#include <exception>

#include "fuzz_input_file.hpp"
#include "fuzz_targets.hpp"
#include "histoflow/slides/image_decode.hpp"

namespace histoflow::fuzz {

// A patch image as the patch-folder source and the finetuning evaluation decode it.
int fuzz_image(const std::uint8_t* data, std::size_t size) {
  const auto file = write_input_file(data, size, "patch.img");
  try {
    const auto image = slides::decode_rgb(file);
    if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * 3) std::abort();
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace histoflow::fuzz
