#pragma once
// SHA-256 (FIPS 180-4): the identity of weight files and, later, of cached outputs.
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace histoflow {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  std::array<std::uint8_t, 32> digest();  // finishes the hash; call once
  std::string hex_digest();

 private:
  void block(const std::uint8_t* chunk);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;
};

std::string sha256_hex(std::string_view data);
std::string sha256_file(const std::filesystem::path& file);  // throws with the path when unreadable

}  // namespace histoflow
