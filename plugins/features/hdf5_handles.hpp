#pragma once
// RAII for HDF5 identifiers, and an error stack turned into exceptions that name the file.
#include <hdf5.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>

namespace histoflow::features {

class H5Id {
 public:
  H5Id() = default;
  H5Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  H5Id(H5Id&& other) noexcept : id_(std::exchange(other.id_, -1)), close_(other.close_) {}
  H5Id& operator=(H5Id&& other) noexcept {
    reset();
    id_ = std::exchange(other.id_, -1);
    close_ = other.close_;
    return *this;
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() { reset(); }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  herr_t close() {  // for files: closing is where buffered data reaches the disk, so its result matters
    const herr_t rc = id_ >= 0 && close_ ? close_(id_) : 0;
    id_ = -1;
    return rc;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Checks an HDF5 identifier or status: throws "<file>: <what>" (HDF5 prints nothing: its auto-printing
// of error stacks is switched off once per process).
hid_t h5_check(hid_t id, const std::filesystem::path& file, const std::string& what);
void h5_silence_errors();

}  // namespace histoflow::features
