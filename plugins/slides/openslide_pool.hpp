#pragma once
// Reused OpenSlide handles: a few per slide, shared by every stage of the process, never one open per tile.
// OpenSlide handles are thread-safe and each holds a cache of decoded tiles, so threads share a slide's
// handles (the least used one) rather than each opening its own: neighbouring tiles then hit the cache.
// A handle that reported an error is retired and closed (OpenSlide handles stay in their error state).
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

typedef struct _openslide openslide_t;

namespace histoflow::slides {

class SlidePool {
 public:
  class Lease {
   public:
    Lease(SlidePool& pool, std::filesystem::path path, openslide_t* handle) : pool_(&pool), path_(std::move(path)), handle_(handle) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), path_(std::move(other.path_)), handle_(other.handle_) { other.handle_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    openslide_t* get() const { return handle_; }
    const std::filesystem::path& path() const { return path_; }

   private:
    SlidePool* pool_;
    std::filesystem::path path_;
    openslide_t* handle_;
  };

  SlidePool(std::size_t max_slides, std::size_t handles_per_slide)
      : max_slides_(max_slides), handles_per_slide_(handles_per_slide) {}
  ~SlidePool();

  // A handle for `path`, reused when one is idle. Throws with the path and OpenSlide's reason on failure.
  Lease acquire(const std::filesystem::path& path);
  // A handle of its own, opened for this lease alone and closed when it is given back: a read on it fails for
  // its own reasons only, never because another thread's read put a shared handle into its error state.
  Lease acquire_unshared(const std::filesystem::path& path);
  std::uint64_t opens() const;  // handles opened so far (for tests: reuse means few opens)

  // Closes the slide's handles as soon as no lease holds them (now, for idle ones); a later acquire opens it again.
  void close_when_idle(const std::filesystem::path& path);

  static SlidePool& shared();  // the process-wide pool used by the slide stages

 private:
  struct Handle {
    openslide_t* slide = nullptr;
    int users = 0;
    bool retired = false;  // reported an error (or is unshared): never handed out again, closed when its last user is done
  };
  struct Entry {
    std::vector<Handle> handles;
    int opening = 0;  // handles being opened right now, outside the lock
    std::uint64_t last_used = 0;
    int users() const;
  };
  Lease open_handle(const std::filesystem::path& path, bool shared);
  void give_back(const std::filesystem::path& path, openslide_t* handle);
  void evict_locked();

  mutable std::mutex mutex_;
  std::map<std::filesystem::path, Entry> entries_;
  std::size_t max_slides_;
  std::size_t handles_per_slide_;
  std::uint64_t clock_ = 0;
  std::uint64_t opens_ = 0;
};

}  // namespace histoflow::slides
