#include "histoflow/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace histoflow {
namespace {

std::filesystem::path make_temp_name(const std::filesystem::path& destination) {
  return destination.parent_path() / (destination.filename().string() + temp_name_suffix());
}

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int error) {
  throw std::runtime_error(what + " '" + path.string() + "': " + std::strerror(error));
}

void fsync_path(const std::filesystem::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) fail("cannot open for sync", path, errno);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0 && !directory) fail("cannot sync", path, error);
}

}  // namespace

const std::string& this_host() {
  static const std::string host = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return std::string("localhost");
    // The short name, at most 32 characters: temporaries of long slide ids must stay within 255 bytes.
    std::string text(name);
    text = text.substr(0, std::min(text.find('.'), std::size_t{32}));
    for (char& c : text)
      if (c == '-' || c == '/') c = '_';
    return text;
  }();
  return host;
}

std::string temp_name_suffix(const std::string& tag) {
  static std::atomic<std::uint64_t> counter{0};
  return kTempMarker + std::to_string(::getpid()) + "-" + this_host() + "-" + tag + std::to_string(counter.fetch_add(1));
}

AtomicFile::AtomicFile(std::filesystem::path destination) : destination_(std::move(destination)) {
  if (destination_.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(destination_.parent_path(), ec);
    if (ec) fail("cannot create folder", destination_.parent_path(), ec.value());
  }
  temp_ = make_temp_name(destination_);
  stream_.open(temp_, std::ios::binary | std::ios::trunc);
  if (!stream_) fail("cannot write", temp_, errno);
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    stream_.close();
    std::error_code ignored;
    std::filesystem::remove(temp_, ignored);
  }
}

void AtomicFile::commit() {
  stream_.flush();
  if (!stream_) fail("cannot write (disk full?)", temp_, errno ? errno : EIO);
  stream_.close();
  if (stream_.fail()) fail("cannot close", temp_, errno ? errno : EIO);
  fsync_path(temp_, false);
  if (::rename(temp_.c_str(), destination_.c_str()) != 0) fail("cannot rename into place", destination_, errno);
  committed_ = true;
  fsync_path(destination_.has_parent_path() ? destination_.parent_path() : ".", true);
}

void write_file_atomically(const std::filesystem::path& destination, const std::string& content) {
  AtomicFile file(destination);
  file.stream().write(content.data(), static_cast<std::streamsize>(content.size()));
  file.commit();
}

}  // namespace histoflow
