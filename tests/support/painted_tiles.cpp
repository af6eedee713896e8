#include "support/painted_tiles.hpp"

#include "../../tools/synth/painting.hpp"

namespace histoflow::testing {

std::vector<std::uint8_t> painted_tile(const std::string& tissue_class, int size, std::uint64_t seed) {
  static const synth::StainLut lut{synth::Stain{}};
  return synth::render_patch(tissue_class, size, seed, lut);
}

}  // namespace histoflow::testing
