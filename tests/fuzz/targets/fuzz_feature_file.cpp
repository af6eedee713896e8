#include <exception>

#include "fuzz_input_file.hpp"
#include "fuzz_targets.hpp"
#include "histoflow/features/feature_file_in_process.hpp"
#include "histoflow/features/feature_layouts.hpp"

namespace histoflow::fuzz {
namespace {

template <typename Read>
void tolerate_errors(Read&& read) {
  try {
    read();
  } catch (const std::exception&) {
  }
}

}  // namespace

// An HDF5 file as every reader of the feature store and of other tools' files (CLAM, TRIDENT) opens it, without
// the checksum (a hostile file can carry a valid one, and other tools' files have none). The readers run here, in
// the fuzzer's process, as they do in histoflow's reader process (feature_file.hpp): libhdf5's crashes are told
// apart from histoflow's by where they happen (tools/fuzz/run).
int fuzz_feature_file(const std::uint8_t* data, std::size_t size) {
  using namespace features::in_process;
  const auto file = write_input_file(data, size, "features.h5");
  tolerate_errors([&] { (void)read_feature_attributes(file); });
  tolerate_errors([&] { (void)read_feature_shape(file); });
  tolerate_errors([&] { (void)read_slide_features(file, false, false); });
  tolerate_errors([&] { (void)read_coordinates(file); });
  tolerate_errors([&] {
    features::PatchFeatures content = read_patch_features(file, false, false);
    features::name_patch_classes(content, file, {});  // as feature_reader reads another tool's patch file
  });
  return 0;
}

}  // namespace histoflow::fuzz
