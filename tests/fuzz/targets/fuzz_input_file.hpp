#pragma once
// Parsers that take a path (HDF5 files, images, manifests, sealed headers) get the fuzzer's bytes through a file:
// one per process and per name, in /dev/shm when it exists (no disk traffic), removed when the process ends.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace histoflow::fuzz {

std::filesystem::path write_input_file(const std::uint8_t* data, std::size_t size, const std::string& name);

}  // namespace histoflow::fuzz
