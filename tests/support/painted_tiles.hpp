#pragma once
// H&E-like tiles for tests that need realistic pixels without a slide: the synthetic cohort's painter
// (tools/synth), behind the test support so that plugin tests need not include a tool's header.
#include <cstdint>
#include <string>
#include <vector>

namespace histoflow::testing {

// uint8 RGB [size, size, 3] of one tissue class (NCT-CRC-HE names: ADI, BACK, DEB, LYM, MUC, MUS, NORM, STR, TUM)
// in the default stain; the same class, size and seed give the same pixels.
std::vector<std::uint8_t> painted_tile(const std::string& tissue_class, int size, std::uint64_t seed);

}  // namespace histoflow::testing
