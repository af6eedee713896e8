#include <exception>

#include "fuzz_input_file.hpp"
#include "fuzz_targets.hpp"
#include "histoflow/features/feature_file.hpp"
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
// the checksum (a hostile file can carry a valid one, and other tools' files have none).
int fuzz_feature_file(const std::uint8_t* data, std::size_t size) {
  const auto file = write_input_file(data, size, "features.h5");
  tolerate_errors([&] { (void)features::read_feature_attributes(file); });
  tolerate_errors([&] { (void)features::read_feature_shape(file); });
  tolerate_errors([&] { (void)features::read_slide_features(file, false, false); });
  tolerate_errors([&] { (void)features::read_patch_features(file, false, false); });
  tolerate_errors([&] { (void)features::read_coordinates(file); });
  tolerate_errors([&] { (void)features::read_patch_features(features::FeatureFileRef{file, "h5", {}}); });
  return 0;
}

}  // namespace histoflow::fuzz
