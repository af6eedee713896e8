// Replays every committed fuzz input through its target: the inputs that once crashed (regressions/<target>/,
// each named after what it found) and the seed corpus (seeds/<target>/). A regression that comes back crashes
// this test, under ASan/UBSan in the sanitizer suite. Inputs that crash a library (library_findings/<target>/) would
// crash this test in-process too: they go through the readers histoflow calls, which contain them.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"
#include "histoflow/input_limits.hpp"
#include "targets/fuzz_targets.hpp"
#include "targets/library_leaks.hpp"

#if defined(__SANITIZE_ADDRESS__)
// As histoflow/sanitizer_options.hpp, with the slow unwinder so that the library leak suppressions match, and a
// failed allocation returning null as it does outside ASan (HDF5 tries what a damaged file claims, then reports
// an error: tools/fuzz/run).
extern "C" const char* __asan_default_options() {
  return "intercept_tls_get_addr=0:fast_unwind_on_malloc=0:allocator_may_return_null=1";
}
extern "C" const char* __lsan_default_suppressions() { return histoflow::fuzz::kLibraryLeakSuppressions; }
#endif

namespace {

using Target = int (*)(const std::uint8_t*, std::size_t);

const std::map<std::string, Target> kTargets = {
    {"graph", histoflow::fuzz::fuzz_graph},
    {"manifest", histoflow::fuzz::fuzz_manifest},
    {"safetensors", histoflow::fuzz::fuzz_safetensors},
    {"checkpoint", histoflow::fuzz::fuzz_checkpoint},
    {"sealed_header", histoflow::fuzz::fuzz_sealed_header},
    {"feature_file", histoflow::fuzz::fuzz_feature_file},
    {"image", histoflow::fuzz::fuzz_image},
};

std::size_t replay(const std::string& corpus) {
  std::size_t count = 0;
  const std::filesystem::path root = std::filesystem::path(HISTOFLOW_FUZZ_CORPUS_DIR) / corpus;
  for (const auto& [name, target] : kTargets) {
    const auto folder = root / name;
    if (!std::filesystem::is_directory(folder)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      INFO(entry.path().string());
      CHECK(target(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
      ++count;
    }
  }
  return count;
}

}  // namespace

TEST_CASE("every input that once crashed a parser is now handled", "[fuzz]") {
  CHECK(replay("regressions") > 0);
}

TEST_CASE("every seed input is handled", "[fuzz]") {
  CHECK(replay("seeds") > 0);
}

TEST_CASE("every input that crashes libhdf5 or never ends in it fails alone, as an error naming the file", "[fuzz]") {
  const auto folder = std::filesystem::path(HISTOFLOW_FUZZ_CORPUS_DIR) / "library_findings/feature_file";
  // Some loop forever inside libhdf5: the reader process is stopped at this limit.
  histoflow::ScopedInputLimit seconds(histoflow::InputLimit::FeatureReadSeconds, 3);
  std::size_t inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const auto file = entry.path();
    INFO(file.string());
    namespace features = histoflow::features;
    std::size_t contained = 0;
    for (const auto& read : std::vector<std::function<void()>>{
             [&] { features::read_feature_attributes(file); }, [&] { features::read_feature_shape(file); },
             [&] { features::read_slide_features(file, false, false); }, [&] { features::read_coordinates(file); },
             [&] { features::read_patch_features(file, false, false); }}) {
      try {
        read();
      } catch (const std::exception& e) {
        const std::string message = e.what();
        if (message.find("'" + file.string() + "': libhdf5 ") != std::string::npos) ++contained;
      }
    }
    CHECK(contained > 0);  // it still crashes libhdf5 (or loops in it) somewhere, and this process went on
    ++inputs;
  }
  CHECK(inputs > 0);
}
