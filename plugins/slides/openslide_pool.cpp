#include "openslide_pool.hpp"

#include <openslide/openslide.h>

#include <stdexcept>

namespace histoflow::slides {

SlidePool::Lease::~Lease() {
  if (handle_) pool_->give_back(path_, handle_);
}

SlidePool::~SlidePool() {
  for (auto& [path, entry] : entries_)
    for (auto& handle : entry.handles) openslide_close(handle.slide);
}

int SlidePool::Entry::users() const {
  int n = opening;
  for (const auto& h : handles) n += h.users;
  return n;
}

SlidePool& SlidePool::shared() {
  // One shared handle per slide: threads share its tile cache (measured fastest by tools/bench/bench-slides).
  // Idle slides beyond 8 are closed: each handle keeps up to 32 MB of decoded tiles, and the run works on a
  // few slides at a time ([run] max_in_flight), so keeping more would make memory grow with the cohort.
  static SlidePool pool(8, 1);
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
    Handle* best = nullptr;
    std::size_t usable = 0;
    for (auto& h : entry.handles) {
      if (!h.retired && openslide_get_error(h.slide)) h.retired = true;  // failed under a lease still held
      if (!h.retired) {
        ++usable;
        if (!best || h.users < best->users) best = &h;
      }
    }
    // Share the least used handle unless it is busy and another may still be opened.
    if (best && (best->users == 0 || usable + static_cast<std::size_t>(entry.opening) >= handles_per_slide_)) {
      ++best->users;
      return Lease(*this, path, best->slide);
    }
    ++entry.opening;
  }
  return open_handle(path, /*shared=*/true);
}

SlidePool::Lease SlidePool::acquire_unshared(const std::filesystem::path& path) {
  {
    std::lock_guard lock(mutex_);
    Entry& entry = entries_[path];
    entry.last_used = ++clock_;
    ++entry.opening;
  }
  return open_handle(path, /*shared=*/false);
}

// Opens a handle for `path` (counted in its entry's `opening`). Opening parses the file's directory structure:
// done outside the lock. An unshared handle is registered as retired, so acquire never hands it to anyone
// else and give_back closes it.
SlidePool::Lease SlidePool::open_handle(const std::filesystem::path& path, bool shared) {
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
  Entry& entry = entries_[path];
  --entry.opening;
  if (!handle) {
    if (entry.users() == 0 && entry.handles.empty()) entries_.erase(path);
    throw std::runtime_error("cannot open slide '" + path.string() + "': " + failure);
  }
  ++opens_;
  entry.handles.push_back({handle, 1, !shared});
  return Lease(*this, path, handle);
}

void SlidePool::give_back(const std::filesystem::path& path, openslide_t* slide) {
  std::lock_guard lock(mutex_);
  Entry& entry = entries_[path];
  for (auto it = entry.handles.begin(); it != entry.handles.end(); ++it) {
    if (it->slide != slide) continue;
    --it->users;
    if (openslide_get_error(slide)) it->retired = true;
    if (it->retired && it->users == 0) {
      openslide_close(slide);
      entry.handles.erase(it);
    }
    break;
  }
  if (entry.handles.empty() && entry.opening == 0) entries_.erase(path);  // no empty entry counts as an open slide
  evict_locked();
}

void SlidePool::close_when_idle(const std::filesystem::path& path) {
  std::lock_guard lock(mutex_);
  const auto found = entries_.find(path);
  if (found == entries_.end()) return;
  Entry& entry = found->second;
  for (auto it = entry.handles.begin(); it != entry.handles.end();) {
    if (it->users > 0) {
      (it++)->retired = true;  // give_back closes it when its last user is done
    } else {
      openslide_close(it->slide);
      it = entry.handles.erase(it);
    }
  }
  if (entry.handles.empty() && entry.opening == 0) entries_.erase(found);
}

// Keeps at most max_slides_ slides open: the least recently used unused ones are closed first.
void SlidePool::evict_locked() {
  while (entries_.size() > max_slides_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second.users() == 0 && (victim == entries_.end() || it->second.last_used < victim->second.last_used)) victim = it;
    if (victim == entries_.end()) return;  // every slide is in use
    for (auto& handle : victim->second.handles) openslide_close(handle.slide);
    entries_.erase(victim);
  }
}

}  // namespace histoflow::slides
