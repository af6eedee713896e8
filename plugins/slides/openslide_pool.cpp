#include "openslide_pool.hpp"

#include <openslide/openslide.h>

#include <stdexcept>

namespace histoflow::slides {

SlidePool::Lease::~Lease() {
  if (handle_) pool_->give_back(path_, handle_);
}

SlidePool::~SlidePool() {
  for (auto& [path, entry] : entries_)
    for (openslide_t* handle : entry.idle) openslide_close(handle);
}

SlidePool& SlidePool::shared() {
  static SlidePool pool(64, 8);
  return pool;
}

std::uint64_t SlidePool::opens() const {
  std::lock_guard lock(mutex_);
  return opens_;
}

SlidePool::Lease SlidePool::acquire(const std::filesystem::path& path) {
  {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[path];
    entry.last_used = ++clock_;
    ++entry.leased;
    if (!entry.idle.empty()) {
      openslide_t* handle = entry.idle.back();
      entry.idle.pop_back();
      return Lease(*this, path, handle);
    }
  }
  // Opening parses the file's directory structure: done outside the lock.
  std::error_code ec;
  std::string failure;
  openslide_t* handle = nullptr;
  if (!std::filesystem::is_regular_file(path, ec)) {
    failure = "file not found";
  } else if (std::filesystem::file_size(path, ec) == 0) {
    failure = "the file is empty";
  } else if (!openslide_detect_vendor(path.c_str())) {
    failure = "not a slide format OpenSlide can read";
  } else {
    handle = openslide_open(path.c_str());
    if (!handle) {
      failure = "OpenSlide could not open it";
    } else if (const char* error = openslide_get_error(handle)) {
      failure = error;
      openslide_close(handle);
      handle = nullptr;
    }
  }
  std::lock_guard lock(mutex_);
  if (!handle) {
    --entries_[path].leased;
    throw std::runtime_error("cannot open slide '" + path.string() + "': " + failure);
  }
  ++opens_;
  return Lease(*this, path, handle);
}

void SlidePool::give_back(const std::filesystem::path& path, openslide_t* handle) {
  std::lock_guard lock(mutex_);
  Entry& entry = entries_[path];
  --entry.leased;
  if (openslide_get_error(handle) || entry.idle.size() >= max_handles_per_slide_) openslide_close(handle);
  else entry.idle.push_back(handle);
  evict_locked();
}

// Keeps at most max_slides_ slides open: the least recently used idle ones are closed first.
void SlidePool::evict_locked() {
  while (entries_.size() > max_slides_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second.leased == 0 && (victim == entries_.end() || it->second.last_used < victim->second.last_used)) victim = it;
    if (victim == entries_.end()) return;  // every slide is in use
    for (openslide_t* handle : victim->second.idle) openslide_close(handle);
    entries_.erase(victim);
  }
}

}  // namespace histoflow::slides
