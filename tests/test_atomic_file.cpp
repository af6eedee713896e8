#include <catch2/catch.hpp>
#include <fstream>
#include <unistd.h>

#include "histoflow/atomic_file.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {
std::string read(const std::filesystem::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
std::size_t entries(const std::filesystem::path& dir) {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}
}  // namespace

TEST_CASE("atomic file: nothing appears under the final name until commit", "[atomic]") {
  const auto dir = fresh_folder("atomic");
  {
    AtomicFile file(dir / "sub" / "result.txt");
    file.stream() << "partial";
    CHECK_FALSE(std::filesystem::exists(dir / "sub" / "result.txt"));
    CHECK(std::filesystem::exists(file.temp_path()));
  }  // abandoned: the temporary is removed
  CHECK(entries(dir / "sub") == 0);

  write_file_atomically(dir / "sub" / "result.txt", "first");
  CHECK(read(dir / "sub" / "result.txt") == "first");
  {
    AtomicFile file(dir / "sub" / "result.txt");
    file.stream() << "second, but abandoned";
  }
  CHECK(read(dir / "sub" / "result.txt") == "first");  // an earlier complete output survives
  write_file_atomically(dir / "sub" / "result.txt", "third");
  CHECK(read(dir / "sub" / "result.txt") == "third");
  CHECK(entries(dir / "sub") == 1);
}

TEST_CASE("atomic file: an unwritable folder is a clear error naming the path", "[atomic]") {
  if (::geteuid() == 0) {
    // root ignores permission bits; a path under a regular file is unwritable for everyone.
    const auto dir = fresh_folder("atomic-ro");
    std::ofstream(dir / "plain") << "x";
    CHECK_THROWS_WITH(write_file_atomically(dir / "plain" / "out.txt", "y"), Catch::Contains((dir / "plain").string()));
  } else {
    const auto dir = fresh_folder("atomic-ro");
    std::filesystem::permissions(dir, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    CHECK_THROWS_WITH(write_file_atomically(dir / "out.txt", "y"), Catch::Contains(dir.string()));
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  }
}
