#pragma once
// What the reader process (read_features_main.cpp) hands back to the process that asked
// (feature_reader_process.cpp): the result of one read or its error, then an end marker that only a finished
// write has. Both ends are the same build on the same machine: numbers travel in its byte order.
#include <cstdint>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"

namespace histoflow::features::wire {

// The reads a reader process does; its first argument, then the file, then each flag as 0 or 1.
inline constexpr const char* kSlide = "slide";              // flags: verify, require_coords
inline constexpr const char* kCoordinates = "coordinates";  // no flags
inline constexpr const char* kPatch = "patch";              // flags: verify, complete
inline constexpr const char* kShape = "shape";              // no flags
inline constexpr const char* kAttributes = "attributes";    // no flags

inline constexpr std::uint64_t kResult = 0, kError = 1;
inline constexpr std::uint64_t kEndMarker = 0x444e452d46484fa5ULL;
inline constexpr int kChannelFd = 3;  // the reader process writes here: a memory file its parent reads afterwards

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  void number(std::uint64_t value) { raw(&value, sizeof value); }
  void real(double value) { raw(&value, sizeof value); }
  void text(const std::string& value);
  void texts(const std::vector<std::string>& values);
  void floats(const std::vector<float>& values);
  void integers(const std::vector<std::int64_t>& values);
  void attributes(const AttributeMap& values);
  void flush();  // throws when the channel cannot take the bytes

 private:
  void raw(const void* data, std::size_t bytes);
  int fd_;
  std::string pending_;
};

// Reads what a Writer wrote from the start of a file; every length is checked against the bytes there, so a
// channel a dying process left half-written fails with an error rather than a wild allocation.
class Reader {
 public:
  Reader(int fd, std::string context);  // context: the feature file, for errors
  std::uint64_t number();
  double real();
  std::string text();
  std::vector<std::string> texts();
  std::vector<float> floats();
  std::vector<std::int64_t> integers();
  AttributeMap attributes();
  bool at_end() const { return offset_ == size_; }

 private:
  void raw(void* data, std::size_t bytes);
  std::size_t count(std::size_t element_bytes);  // a length prefix, refused when the rest of the channel is shorter
  int fd_;
  std::string context_;
  std::uint64_t offset_ = 0, size_ = 0;
};

void put(Writer& out, const SlideFeatures& value);
void put(Writer& out, const PatchFeatures& value);
void put(Writer& out, const FeatureFileShape& value);
void put(Writer& out, const AttributeMap& value);
void get(Reader& in, SlideFeatures& value);
void get(Reader& in, PatchFeatures& value);
void get(Reader& in, FeatureFileShape& value);
void get(Reader& in, AttributeMap& value);

}  // namespace histoflow::features::wire
