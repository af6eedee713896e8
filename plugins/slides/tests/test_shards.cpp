// Shards of a cohort: every slide in exactly one shard, balanced by size, the same whatever the manifest's row order.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>

#include "histoflow/harness.hpp"
#include "shard_assignment.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::slides;
using histoflow::testing::fresh_folder;

namespace {

std::vector<std::uintmax_t> loads(const std::vector<ShardedItem>& items, const std::vector<std::int64_t>& shard_of, std::int64_t count) {
  std::vector<std::uintmax_t> bytes(static_cast<std::size_t>(count), 0);
  for (std::size_t i = 0; i < items.size(); ++i) bytes[static_cast<std::size_t>(shard_of[i])] += items[i].bytes;
  return bytes;
}

}  // namespace

TEST_CASE("shards: largest first to the lightest shard, within one slide of the mean, independent of row order", "[shards]") {
  std::vector<ShardedItem> items;
  std::uintmax_t total = 0, largest = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::uintmax_t bytes = 100'000'000 + static_cast<std::uintmax_t>((i * 7919) % 1000) * 2'000'000;  // 0.1-2 GB
    items.push_back({"slide_" + std::to_string(i), bytes});
    total += bytes;
    largest = std::max(largest, bytes);
  }
  const std::int64_t count = 7;
  const auto shard_of = assign_shards(items, count);
  const auto bytes = loads(items, shard_of, count);
  for (const auto b : bytes) CHECK(b <= total / count + largest);
  CHECK(*std::max_element(bytes.begin(), bytes.end()) - *std::min_element(bytes.begin(), bytes.end()) <= largest);

  // The same cohort listed in another order: every slide keeps its shard.
  auto reversed = items;
  std::reverse(reversed.begin(), reversed.end());
  const auto shard_of_reversed = assign_shards(reversed, count);
  for (std::size_t i = 0; i < items.size(); ++i) CHECK(shard_of_reversed[items.size() - 1 - i] == shard_of[i]);

  // Equal sizes: round robin by id; more shards than slides: the rest are empty.
  CHECK(assign_shards({{"b", 5}, {"a", 5}, {"c", 5}}, 2) == std::vector<std::int64_t>{1, 0, 0});
  CHECK(assign_shards({{"a", 1}}, 3) == std::vector<std::int64_t>{0});
  CHECK_THROWS(assign_shards({}, 0));
}

TEST_CASE("shards: a slide's size counts the folder where MIRAX keeps its data", "[shards]") {
  const auto folder = fresh_folder("slide-bytes");
  std::filesystem::create_directories(folder / "case" / "deep");
  std::ofstream(folder / "case.mrxs") << std::string(10, 'x');
  std::ofstream(folder / "case" / "Data0000.dat") << std::string(1000, 'x');
  std::ofstream(folder / "case" / "deep" / "Index.dat") << std::string(100, 'x');
  std::ofstream(folder / "plain.svs") << std::string(42, 'x');
  CHECK(slide_bytes(folder / "case.mrxs") == 1110);
  CHECK(slide_bytes(folder / "case") == 1100);  // a slide that is a folder (DICOM)
  CHECK(slide_bytes(folder / "plain.svs") == 42);
  CHECK(slide_bytes(folder / "missing.svs") == 0);
}

TEST_CASE("slide_source: the shards of a manifest emit every slide once, and name their items", "[shards][slides]") {
  histoflow::testing::shared_loader();
  const std::string snippet = "use = \"slide_source\"\nmanifest = \"" + std::string(HISTOFLOW_TEST_COHORT) + "/manifest.csv\"\n";
  const auto whole = StageHarness(snippet).generate_all();
  REQUIRE(whole.size() >= 4);
  std::map<std::string, std::uint64_t> row_of;
  for (const auto& p : whole) row_of[p->provenance.item_id] = p->provenance.sequence;
  std::multiset<std::string> seen;
  for (std::int64_t index = 0; index < 3; ++index) {
    StageHarness shard(snippet, {}, 0, {index, 3});
    const auto items = shard.shard_items();
    const auto packets = shard.generate_all();
    REQUIRE(packets.size() == items.size());
    for (std::size_t i = 0; i < packets.size(); ++i) {
      CHECK(packets[i]->provenance.item_id == items[i]);
      CHECK(packets[i]->provenance.sequence == row_of.at(items[i]));  // the manifest row, as in the whole run
      if (i > 0) CHECK(packets[i]->provenance.sequence > packets[i - 1]->provenance.sequence);  // manifest order
      seen.insert(items[i]);
    }
  }
  CHECK(seen.size() == whole.size());
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == whole.size());
}
