#include "feature_wire.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace histoflow::features::wire {
namespace {

enum AttributeTag : std::uint64_t { kInt = 0, kReal = 1, kBool = 2, kText = 3 };

void write_all(int fd, const char* data, std::size_t left) {
  while (left > 0) {
    const ssize_t written = ::write(fd, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) throw std::runtime_error(std::string("cannot write to the parent process: ") + std::strerror(errno));
    data += written;
    left -= static_cast<std::size_t>(written);
  }
}

void put(Writer& out, const FeatureMatrix& value) {
  out.number(static_cast<std::uint64_t>(value.rows));
  out.number(static_cast<std::uint64_t>(value.dim));
  out.floats(value.values);
}

void get(Reader& in, FeatureMatrix& value) {
  value.rows = static_cast<std::int64_t>(in.number());
  value.dim = static_cast<std::int64_t>(in.number());
  value.values = in.floats();
  const std::uint64_t n = value.values.size();
  const bool consistent = value.rows >= 0 && value.dim >= 0 &&
                          (value.dim == 0 ? n == 0 : n % value.dim == 0 && n / value.dim == static_cast<std::uint64_t>(value.rows));
  if (!consistent)
    throw std::runtime_error("the reader process sent " + std::to_string(n) + " values for a " + std::to_string(value.rows) +
                             " x " + std::to_string(value.dim) + " matrix");
}

}  // namespace

void Writer::raw(const void* data, std::size_t bytes) {
  if (bytes < (64u << 10)) {
    pending_.append(static_cast<const char*>(data), bytes);
    return;
  }
  flush();  // a matrix goes out as it is, without a copy
  write_all(fd_, static_cast<const char*>(data), bytes);
}

void Writer::text(const std::string& value) {
  number(value.size());
  raw(value.data(), value.size());
}

void Writer::texts(const std::vector<std::string>& values) {
  number(values.size());
  for (const auto& value : values) text(value);
}

void Writer::floats(const std::vector<float>& values) {
  number(values.size());
  raw(values.data(), values.size() * sizeof(float));
}

void Writer::integers(const std::vector<std::int64_t>& values) {
  number(values.size());
  raw(values.data(), values.size() * sizeof(std::int64_t));
}

void Writer::attributes(const AttributeMap& values) {
  number(values.size());
  for (const auto& [key, value] : values) {
    text(key);
    if (const auto* i = std::get_if<std::int64_t>(&value)) {
      number(kInt);
      number(static_cast<std::uint64_t>(*i));
    } else if (const auto* d = std::get_if<double>(&value)) {
      number(kReal);
      real(*d);
    } else if (const auto* b = std::get_if<bool>(&value)) {
      number(kBool);
      number(*b ? 1 : 0);
    } else {
      number(kText);
      text(std::get<std::string>(value));
    }
  }
}

void Writer::flush() {
  write_all(fd_, pending_.data(), pending_.size());
  pending_.clear();
}

Reader::Reader(int fd, std::string context) : fd_(fd), context_(std::move(context)) {
  struct stat info {};
  if (::fstat(fd_, &info) != 0) throw std::runtime_error(context_ + ": cannot read what the reader process sent");
  size_ = static_cast<std::uint64_t>(info.st_size);
}

void Reader::raw(void* data, std::size_t bytes) {
  if (bytes > size_ - offset_) throw std::runtime_error(context_ + ": the reader process sent an incomplete result");
  auto* out = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t got = ::pread(fd_, out, bytes, static_cast<off_t>(offset_));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw std::runtime_error(context_ + ": cannot read what the reader process sent");
    out += got;
    offset_ += static_cast<std::uint64_t>(got);
    bytes -= static_cast<std::size_t>(got);
  }
}

std::size_t Reader::count(std::size_t element_bytes) {
  const std::uint64_t n = number();
  if (n > (size_ - offset_) / element_bytes)
    throw std::runtime_error(context_ + ": the reader process sent an incomplete result");
  return static_cast<std::size_t>(n);
}

std::uint64_t Reader::number() {
  std::uint64_t value = 0;
  raw(&value, sizeof value);
  return value;
}

double Reader::real() {
  double value = 0;
  raw(&value, sizeof value);
  return value;
}

std::string Reader::text() {
  std::string value(count(1), '\0');
  raw(value.data(), value.size());
  return value;
}

std::vector<std::string> Reader::texts() {
  std::vector<std::string> values(count(sizeof(std::uint64_t)));  // each text has at least its length
  for (auto& value : values) value = text();
  return values;
}

std::vector<float> Reader::floats() {
  std::vector<float> values(count(sizeof(float)));
  raw(values.data(), values.size() * sizeof(float));
  return values;
}

std::vector<std::int64_t> Reader::integers() {
  std::vector<std::int64_t> values(count(sizeof(std::int64_t)));
  raw(values.data(), values.size() * sizeof(std::int64_t));
  return values;
}

AttributeMap Reader::attributes() {
  AttributeMap values;
  for (std::size_t n = count(3 * sizeof(std::uint64_t)), i = 0; i < n; ++i) {
    std::string key = text();
    switch (number()) {
      case kInt: values[key] = static_cast<std::int64_t>(number()); break;
      case kReal: values[key] = real(); break;
      case kBool: values[key] = number() != 0; break;
      case kText: values[key] = text(); break;
      default: throw std::runtime_error(context_ + ": the reader process sent an attribute of no known type");
    }
  }
  return values;
}

void put(Writer& out, const SlideFeatures& value) {
  put(out, value.features);
  out.integers(value.coords);
  out.attributes(value.attributes);
  out.attributes(value.coords_attributes);
  out.attributes(value.features_attributes);
}

void get(Reader& in, SlideFeatures& value) {
  get(in, value.features);
  value.coords = in.integers();
  value.attributes = in.attributes();
  value.coords_attributes = in.attributes();
  value.features_attributes = in.attributes();
}

void put(Writer& out, const PatchFeatures& value) {
  put(out, value.features);
  out.integers(value.labels);
  out.texts(value.paths);
  out.texts(value.class_names);
  out.attributes(value.attributes);
}

void get(Reader& in, PatchFeatures& value) {
  get(in, value.features);
  value.labels = in.integers();
  value.paths = in.texts();
  value.class_names = in.texts();
  value.attributes = in.attributes();
}

void put(Writer& out, const FeatureFileShape& value) {
  out.number(static_cast<std::uint64_t>(value.rows));
  out.number(static_cast<std::uint64_t>(value.dim));
  out.number(value.has_coords ? 1 : 0);
  out.attributes(value.attributes);
  out.attributes(value.features_attributes);
}

void get(Reader& in, FeatureFileShape& value) {
  value.rows = static_cast<std::int64_t>(in.number());
  value.dim = static_cast<std::int64_t>(in.number());
  value.has_coords = in.number() != 0;
  value.attributes = in.attributes();
  value.features_attributes = in.attributes();
}

void put(Writer& out, const AttributeMap& value) { out.attributes(value); }
void get(Reader& in, AttributeMap& value) { value = in.attributes(); }

}  // namespace histoflow::features::wire
