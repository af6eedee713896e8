// One libFuzzer executable per target: HISTOFLOW_FUZZ_FUNCTION names the target's function (fuzz_targets.hpp).
#include "fuzz_targets.hpp"
#include "library_leaks.hpp"

extern "C" const char* __lsan_default_suppressions() { return histoflow::fuzz::kLibraryLeakSuppressions; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return histoflow::fuzz::HISTOFLOW_FUZZ_FUNCTION(data, size);
}
