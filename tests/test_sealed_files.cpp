// Sealed files and cache folders: a checksum that catches any change, and a cleanup that removes exactly
// the stale temporaries and orphans.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/sealed_file.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;

namespace {

std::filesystem::path write_sealed(const std::filesystem::path& file, const std::string& body, const std::string& identity) {
  std::filesystem::create_directories(file.parent_path());
  const auto temp = sealed_temp_path(file);
  std::ofstream(temp, std::ios::binary) << std::string(kSealedHeaderBytes, 'x') << body;
  seal_and_commit(temp, file, "test-format", identity);
  return file;
}

void flip_byte(const std::filesystem::path& file, std::uintmax_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("a sealed file verifies, and any changed content byte fails verification", "[sealed]") {
  const auto dir = testing::fresh_folder("sealed");
  const auto file = write_sealed(dir / "a.bin", "payload bytes", R"({"slide_id": "s1"})");
  const auto header = read_sealed_header(file);
  REQUIRE(header);
  CHECK(header->format == "test-format");
  CHECK(header->identity == R"({"slide_id": "s1"})");
  CHECK(header->sha256.size() == 64);
  CHECK(verify_sealed_file(file).empty());
  for (const auto& entry : std::filesystem::directory_iterator(dir)) CHECK(entry.path().filename() == "a.bin");  // no temporary left

  flip_byte(file, kSealedHeaderBytes + 3);
  CHECK(verify_sealed_file(file).find("checksum mismatch") != std::string::npos);

  std::filesystem::resize_file(file, kSealedHeaderBytes + 2);  // truncated
  CHECK(!verify_sealed_file(file).empty());
  std::ofstream(dir / "plain.txt") << "not sealed";
  CHECK(!read_sealed_header(dir / "plain.txt"));
  CHECK(verify_sealed_file(dir / "plain.txt").find("not a sealed") != std::string::npos);
}

TEST_CASE("sealing refuses identities that do not fit one header line and leaves no temporary", "[sealed]") {
  const auto dir = testing::fresh_folder("sealed-bad");
  const auto temp = sealed_temp_path(dir / "b.bin");
  std::ofstream(temp, std::ios::binary) << std::string(kSealedHeaderBytes, '\0') << "x";
  CHECK_THROWS_WITH(seal_and_commit(temp, dir / "b.bin", "f", "two\nlines"), Catch::Contains("one line"));
  CHECK(!std::filesystem::exists(temp));
  CHECK(!std::filesystem::exists(dir / "b.bin"));
}

TEST_CASE("cache gc removes stale temporaries and orphans, keeps good entries and live writers' files", "[sealed][cache]") {
  const auto root = testing::fresh_folder("cache-gc");
  const auto good = write_sealed(root / "lineage" / "good.h5", "good", "{}");
  const auto corrupt = write_sealed(root / "lineage" / "corrupt.h5", "corrupt", "{}");
  flip_byte(corrupt, kSealedHeaderBytes);
  std::ofstream(root / "lineage" / "unsealed.h5") << "no header";
  // A temporary of a process that cannot exist (pid above pid_max) and one of this live process.
  const auto stale = root / "lineage" / (std::string("x.h5") + kTempMarker + "2147483640-0");
  const auto live = root / "lineage" / (std::string("y.h5") + kTempMarker + std::to_string(::getpid()) + "-0");
  std::ofstream(stale) << "partial";
  std::ofstream(live) << "partial";

  const CacheScan scan = scan_cache(root);
  CHECK(scan.entries.size() == 3);
  REQUIRE(scan.temporaries.size() == 2);

  const CacheCleanup dry = clean_cache(root, true);
  CHECK(dry.removed_temporaries == std::vector<std::filesystem::path>{stale});
  CHECK(dry.removed_orphans.size() == 2);
  CHECK(std::filesystem::exists(stale));  // a dry run removes nothing

  const CacheCleanup done = clean_cache(root, false);
  CHECK(done.failures.empty());
  CHECK(!std::filesystem::exists(stale));
  CHECK(std::filesystem::exists(live));
  CHECK(!std::filesystem::exists(corrupt));
  CHECK(!std::filesystem::exists(root / "lineage" / "unsealed.h5"));
  CHECK(std::filesystem::exists(good));
  CHECK(verify_sealed_file(good).empty());
}
