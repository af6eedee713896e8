#pragma once
// Limits on what a parser accepts from a file, so that a hostile or damaged input fails with a clear error instead
// of exhausting memory, the stack or time. Each limit has a default that real data stays far below and an
// environment variable that raises it (docs/limits.md):
//   HISTOFLOW_LIMIT_<NAME in upper case>=<value>, e.g. HISTOFLOW_LIMIT_IMAGE_PIXELS=400000000
#include <cstdint>
#include <filesystem>
#include <string>

namespace histoflow {

enum class InputLimit {
  GraphFileBytes,        // a TOML graph file
  ManifestRows,          // rows of a cohort manifest (CSV)
  CsvFileBytes,          // a CSV file read whole (manifests, label files)
  SafetensorsHeaderBytes,  // the JSON header of a .safetensors file (the format's own limit is 100 MB)
  SafetensorsTensors,    // tensors described by one .safetensors header
  ArchiveMembers,        // files inside a torch.save zip archive
  PickleObjects,         // objects one pickle may build
  PickleNesting,         // containers nested inside each other in a pickle
  PickleMemo,            // memo entries of a pickle
  TensorDimensions,      // dimensions of one tensor in a checkpoint
  ImagePixels,           // width × height of a decoded patch image
  FeatureValues,         // rows × columns of one feature matrix in an HDF5 file
  LabelClasses,          // classes a labelled patch dataset's label numbers imply
  FeatureReadSeconds,    // wall time of one feature-file read in its reader process (libhdf5 loops on some damaged files)
  FeatureReadMemoryBytes,  // address space of a reader process beyond 4x the file's size (not in sanitizer builds)
};
inline constexpr InputLimit kLastInputLimit = InputLimit::FeatureReadMemoryBytes;

struct InputLimitInfo {
  const char* name;           // "image_pixels"
  std::uint64_t default_value;
  const char* what;           // "pixels of one decoded image"
};

const InputLimitInfo& input_limit_info(InputLimit limit);

// The limit in force: the default, or HISTOFLOW_LIMIT_<NAME> when set (read once; a malformed value throws).
std::uint64_t input_limit(InputLimit limit);

// Sets a limit for the rest of the process (an application embedding histoflow, a test); returns the previous
// value. Parsers running at the same time see the old or the new value.
std::uint64_t set_input_limit(InputLimit limit, std::uint64_t value);

// Sets a limit for a scope (a test, one embedded call) and puts the previous value back.
class ScopedInputLimit {
 public:
  ScopedInputLimit(InputLimit limit, std::uint64_t value) : limit_(limit), previous_(set_input_limit(limit, value)) {}
  ~ScopedInputLimit() { set_input_limit(limit_, previous_); }
  ScopedInputLimit(const ScopedInputLimit&) = delete;
  ScopedInputLimit& operator=(const ScopedInputLimit&) = delete;

 private:
  InputLimit limit_;
  std::uint64_t previous_;
};

// "<context>: 123456 pixels of one decoded image exceed the limit image_pixels = 100000000 (raise it with
// HISTOFLOW_LIMIT_IMAGE_PIXELS)". `context` says which file or structure.
std::string input_limit_message(InputLimit limit, std::uint64_t value, const std::string& context);

// Throws std::runtime_error with input_limit_message when value exceeds the limit.
void check_input_limit(InputLimit limit, std::uint64_t value, const std::string& context);

// The whole file, refusing one over the limit's bytes while reading (so /dev/zero or a growing file cannot exhaust
// memory). Throws naming the file when it cannot be read.
std::string read_file_within_limit(const std::filesystem::path& file, InputLimit limit);

// The variable that raises a limit: "HISTOFLOW_LIMIT_IMAGE_PIXELS".
std::string input_limit_variable(InputLimit limit);

}  // namespace histoflow
