#include "histoflow/item_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/sha256.hpp"

namespace histoflow {
namespace {

// Open-file-description locks belong to this descriptor, not to the process: a second descriptor of the same file in
// this process (another thread's item) neither shares nor silently drops it, as classic POSIX locks would.
#ifdef F_OFD_SETLK
constexpr int kSetLock = F_OFD_SETLK;
#else
constexpr int kSetLock = F_SETLK;
#endif

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& file, int error) {
  throw std::runtime_error(what + " '" + file.string() + "': " + std::strerror(error));
}

}  // namespace

std::optional<ItemLock> ItemLock::try_acquire(const std::filesystem::path& file, std::string* holder) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot open the item lock", file, errno);
  struct flock request {};
  request.l_type = F_WRLCK;
  request.l_whence = SEEK_SET;
  if (::fcntl(fd, kSetLock, &request) != 0) {
    const int error = errno;
    if (error == EAGAIN || error == EACCES) {
      if (holder) {
        char text[256] = {};
        const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
        *holder = n > 0 ? std::string(text, static_cast<std::size_t>(n)) : "another process";
      }
      ::close(fd);
      return std::nullopt;
    }
    ::close(fd);
    fail("cannot lock", file, error);
  }
  // Who holds it, for the message another process prints (the lock itself is what counts, not this text).
  const std::string who = "pid " + std::to_string(::getpid()) + " on " + this_host();
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] const auto written = ::pwrite(fd, who.data(), who.size(), 0);
  }
  return ItemLock(fd);
}

ItemLock::~ItemLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the description releases its lock
}

std::filesystem::path item_lock_file(const std::filesystem::path& folder, const std::string& source_stage, const std::string& item_id) {
  // The hash keeps ids apart that differ only in characters made file-safe, or beyond the 100 characters kept (a
  // file name has at most 255 bytes).
  return folder / source_stage / cache_file_name(item_id.substr(0, 100), sha256_hex(item_id), ".lock");
}

}  // namespace histoflow
