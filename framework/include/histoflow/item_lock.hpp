#pragma once
// One process at a time works on an item (a slide) of a shared output folder: two shards, or two reruns, that
// both reach the same slide must not both compute it. The lock is an open-file-description lock (fcntl) on a
// small file: the kernel (or the NFS lock manager) releases it when its holder exits, however it ends — a killed
// or crashed holder keeps nothing locked.
#include <filesystem>
#include <optional>
#include <string>

namespace histoflow {

class ItemLock {
 public:
  // Locks `file` (created with its folders) when no other process holds it; nullopt when one does, with what
  // that holder wrote in the file ("pid 123 on node7") in `holder`. Throws with the path when the file cannot be
  // made or locked at all.
  static std::optional<ItemLock> try_acquire(const std::filesystem::path& file, std::string* holder = nullptr);

  ItemLock(ItemLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ItemLock& operator=(ItemLock&&) = delete;
  ItemLock(const ItemLock&) = delete;
  ~ItemLock();  // releases the lock (the file stays: removing it would race with a process about to lock it)

 private:
  explicit ItemLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Where a source item's lock lives: <folder>/<source stage>/<the item id, made file-safe>-<hash>.lock.
std::filesystem::path item_lock_file(const std::filesystem::path& folder, const std::string& source_stage, const std::string& item_id);

}  // namespace histoflow
