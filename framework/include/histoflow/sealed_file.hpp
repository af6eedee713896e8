#pragma once
// Sealed files: the integrity envelope of every cached output (feature files, tile grids).
//
// A sealed file begins with a 4 KiB header block that the file's own format ignores (an HDF5 user block,
// for instance):
//   histoflow-sealed v1\n
//   format <name>\n            what follows the block (e.g. "hdf5-features")
//   sha256 <64 hex>\n          SHA-256 of every byte after the block
//   identity <one JSON line>\n what the content was computed from (cache key, slide, encoder, ...)
// padded with zero bytes. `seal_and_commit` fills the header of a finished temporary file, syncs it and
// renames it into place, so a file with its final name is complete and checkable without its format's library.
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

namespace histoflow {

inline constexpr std::size_t kSealedHeaderBytes = 4096;

struct SealedHeader {
  std::string format;
  std::string sha256;
  std::string identity;  // JSON
};

// A temporary name next to `destination` ("<name>.tmp-<pid>-<n>", see kTempMarker).
std::filesystem::path sealed_temp_path(const std::filesystem::path& destination);

// `temp` holds kSealedHeaderBytes of anything followed by the content: writes the header, fsyncs, renames
// to `destination` and syncs the folder. Throws naming the file (the temporary is removed on failure).
void seal_and_commit(const std::filesystem::path& temp, const std::filesystem::path& destination,
                     const std::string& format, const std::string& identity);

// The header alone (reads 4 KiB); nullopt when the file is not sealed. Throws when it cannot be read.
std::optional<SealedHeader> read_sealed_header(const std::filesystem::path& file);

// Empty when the file is sealed and its content matches the checksum; otherwise what is wrong.
std::string verify_sealed_file(const std::filesystem::path& file);

}  // namespace histoflow
