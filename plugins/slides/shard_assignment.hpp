#pragma once
// Which shard takes which slide: balanced by file size, and the same on every run over the same cohort.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace histoflow::slides {

struct ShardedItem {
  std::string id;
  std::uintmax_t bytes = 0;
};

// The shard (0..count-1) of each item, in the items' order. Largest first, each to the shard with the fewest bytes
// so far (the lowest index on a tie; ties between items broken by id): no shard exceeds the mean by more than the
// largest item. Depends only on the set of (id, bytes), not on the order of the manifest's rows.
std::vector<std::int64_t> assign_shards(const std::vector<ShardedItem>& items, std::int64_t count);

// A slide's size on disk: the file, plus the folder of the same name beside it where a format keeps its data
// (MIRAX: slide.mrxs and slide/), or every file of a slide that is a folder (DICOM). 0 when unreadable.
std::uintmax_t slide_bytes(const std::filesystem::path& path);

}  // namespace histoflow::slides
