#include "slide_fingerprint.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "histoflow/sha256.hpp"

namespace histoflow::slides {

std::string slide_fingerprint(const std::filesystem::path& file) {
  constexpr std::uintmax_t kEdge = 1 << 20;
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(file, ec);
  if (ec) throw std::runtime_error("cannot read slide '" + file.string() + "': " + ec.message());
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read slide '" + file.string() + "': " + std::strerror(errno));
  Sha256 hash;
  const std::string header = "histoflow-slide-fingerprint v1 size " + std::to_string(size) + "\n";
  hash.update(header.data(), header.size());
  std::vector<char> buffer(kEdge);
  const auto read_at = [&](std::uintmax_t offset, std::uintmax_t count) {
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(buffer.data(), static_cast<std::streamsize>(count));
    if (static_cast<std::uintmax_t>(in.gcount()) != count) throw std::runtime_error("cannot read slide '" + file.string() + "'");
    hash.update(buffer.data(), count);
  };
  read_at(0, std::min(size, kEdge));
  if (size > kEdge) read_at(size - std::min(size - kEdge, kEdge), std::min(size - kEdge, kEdge));
  return hash.hex_digest();
}

}  // namespace histoflow::slides
