#include "histoflow/sealed_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "histoflow/atomic_file.hpp"
#include "histoflow/sha256.hpp"

namespace histoflow {
namespace {

constexpr const char* kMagic = "histoflow-sealed v1";

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int error) {
  throw std::runtime_error(what + " '" + path.string() + "': " + std::strerror(error));
}

std::string content_sha256(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot read", file, errno);
  in.seekg(static_cast<std::streamoff>(kSealedHeaderBytes));
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) fail("cannot read", file, errno ? errno : EIO);
  return hash.hex_digest();
}

void sync_fd(int fd, const std::filesystem::path& path) {
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail("cannot sync (disk full?)", path, error);
  }
}

}  // namespace

std::filesystem::path sealed_temp_path(const std::filesystem::path& destination) {
  return destination.parent_path() / (destination.filename().string() + temp_name_suffix("s"));
}

void seal_and_commit(const std::filesystem::path& temp, const std::filesystem::path& destination, const std::string& format,
                     const std::string& identity) {
  struct RemoveOnFailure {
    const std::filesystem::path& path;
    bool armed = true;
    ~RemoveOnFailure() {
      std::error_code ignored;
      if (armed) std::filesystem::remove(path, ignored);
    }
  } cleanup{temp};
  if (identity.find('\n') != std::string::npos || format.find('\n') != std::string::npos)
    throw std::invalid_argument("sealed file '" + destination.string() + "': format and identity must be one line");
  std::string header = std::string(kMagic) + "\nformat " + format + "\nsha256 " + content_sha256(temp) + "\nidentity " +
                       identity + "\n";
  if (header.size() > kSealedHeaderBytes)
    throw std::invalid_argument("sealed file '" + destination.string() + "': identity too long for the header block");
  header.resize(kSealedHeaderBytes, '\0');
  const int fd = ::open(temp.c_str(), O_WRONLY);
  if (fd < 0) fail("cannot open", temp, errno);
  if (::pwrite(fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    const int error = errno ? errno : EIO;
    ::close(fd);
    fail("cannot write (disk full?)", temp, error);
  }
  sync_fd(fd, temp);
  ::close(fd);
  if (::rename(temp.c_str(), destination.c_str()) != 0) fail("cannot rename into place", destination, errno);
  cleanup.armed = false;
  const auto folder = destination.has_parent_path() ? destination.parent_path() : std::filesystem::path(".");
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

std::optional<SealedHeader> read_sealed_header(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot read", file, errno);
  std::string block(kSealedHeaderBytes, '\0');
  in.read(block.data(), static_cast<std::streamsize>(block.size()));
  if (static_cast<std::size_t>(in.gcount()) < kSealedHeaderBytes) return std::nullopt;
  block.resize(block.find('\0') == std::string::npos ? block.size() : block.find('\0'));
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < block.size();) {
    const auto end = block.find('\n', start);
    if (end == std::string::npos) break;
    lines.push_back(block.substr(start, end - start));
    start = end + 1;
  }
  const auto field = [&](std::size_t i, const std::string& name) -> std::optional<std::string> {
    if (i >= lines.size() || lines[i].rfind(name + " ", 0) != 0) return std::nullopt;
    return lines[i].substr(name.size() + 1);
  };
  if (lines.empty() || lines[0] != kMagic) return std::nullopt;
  auto format = field(1, "format"), sha = field(2, "sha256"), identity = field(3, "identity");
  if (!format || !sha || !identity) return std::nullopt;
  return SealedHeader{*format, *sha, *identity};
}

std::string verify_sealed_file(const std::filesystem::path& file) {
  try {
    const auto header = read_sealed_header(file);
    if (!header) return "not a sealed histoflow file (no header block)";
    const std::string actual = content_sha256(file);
    if (actual != header->sha256) return "checksum mismatch: header says " + header->sha256 + ", content is " + actual;
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace histoflow
