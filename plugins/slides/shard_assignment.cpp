#include "shard_assignment.hpp"

#include <algorithm>
#include <numeric>
#include <queue>
#include <stdexcept>

namespace histoflow::slides {
namespace {

std::uintmax_t folder_bytes(const std::filesystem::path& folder) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(folder, ec); !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec)) {
      const std::uintmax_t bytes = it->file_size(ec);
      if (!ec) total += bytes;  // an unreadable entry counts 0, not (uintmax_t)-1
    }
  return total;
}

}  // namespace

std::vector<std::int64_t> assign_shards(const std::vector<ShardedItem>& items, std::int64_t count) {
  if (count < 1) throw std::invalid_argument("a shard count must be at least 1");
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (items[a].bytes != items[b].bytes) return items[a].bytes > items[b].bytes;
    return items[a].id < items[b].id;
  });
  // (bytes so far, shard): the least loaded shard on top, the lower index first among equals.
  using Load = std::pair<std::uintmax_t, std::int64_t>;
  std::priority_queue<Load, std::vector<Load>, std::greater<>> shards;
  for (std::int64_t s = 0; s < count; ++s) shards.push({0, s});
  std::vector<std::int64_t> shard_of(items.size(), 0);
  for (const std::size_t i : order) {
    auto [bytes, shard] = shards.top();
    shards.pop();
    shard_of[i] = shard;
    shards.push({bytes + items[i].bytes, shard});
  }
  return shard_of;
}

std::uintmax_t slide_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return folder_bytes(path);
  std::uintmax_t total = std::filesystem::file_size(path, ec);
  if (ec) total = 0;
  const auto companion = path.parent_path() / path.stem();
  if (path.has_extension() && std::filesystem::is_directory(companion, ec)) total += folder_bytes(companion);
  return total;
}

}  // namespace histoflow::slides
