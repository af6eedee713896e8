#pragma once
// The fuzz targets: each feeds arbitrary bytes to one parser the way histoflow reads that kind of file, and lets
// only the parser's own error (an exception) through as a normal outcome. A crash, a hang, a sanitizer report or
// unbounded memory is a finding. The same functions replay tests/fuzz/regressions/ in the unit tests.
#include <cstddef>
#include <cstdint>

namespace histoflow::fuzz {

int fuzz_graph(const std::uint8_t* data, std::size_t size);         // TOML graph text: loader and validator
int fuzz_manifest(const std::uint8_t* data, std::size_t size);      // cohort manifest (CSV)
int fuzz_safetensors(const std::uint8_t* data, std::size_t size);   // .safetensors weights
int fuzz_checkpoint(const std::uint8_t* data, std::size_t size);    // torch.save archive and its pickle
int fuzz_sealed_header(const std::uint8_t* data, std::size_t size); // sealed-file header block
int fuzz_feature_file(const std::uint8_t* data, std::size_t size);  // HDF5 feature file
int fuzz_image(const std::uint8_t* data, std::size_t size);         // patch image (PNG, JPEG, TIFF, WebP)

}  // namespace histoflow::fuzz
