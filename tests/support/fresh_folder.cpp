#include "support/fresh_folder.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <vector>

namespace histoflow::testing {
namespace {

// Owns the folders made in this process; its destructor runs at exit.
class MadeFolders {
 public:
  void add(const std::filesystem::path& folder) {
    std::lock_guard lock(mutex_);
    folders_.push_back(folder);
  }
  ~MadeFolders() {
    const char* keep = std::getenv("HISTOFLOW_KEEP_TEST_FILES");
    if (keep != nullptr && std::string_view(keep) == "1") return;
    std::error_code ignored;
    for (const auto& folder : folders_) std::filesystem::remove_all(folder, ignored);
  }

 private:
  std::mutex mutex_;
  std::vector<std::filesystem::path> folders_;
};

MadeFolders& made_folders() {
  static MadeFolders folders;
  return folders;
}

}  // namespace

std::filesystem::path fresh_folder(const std::string& name) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("histoflow-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made_folders().add(dir);
  return dir;
}

}  // namespace histoflow::testing
