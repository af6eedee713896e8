#include "fuzz_input_file.hpp"

#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace histoflow::fuzz {
namespace {

struct ProcessFolder {
  std::filesystem::path path;
  ProcessFolder() {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    path = base / ("histoflow-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~ProcessFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

std::filesystem::path write_input_file(const std::uint8_t* data, std::size_t size, const std::string& name) {
  static const ProcessFolder folder;
  const auto file = folder.path / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out.flush()) throw std::runtime_error("cannot write the fuzz input " + file.string());
  return file;
}

}  // namespace histoflow::fuzz
