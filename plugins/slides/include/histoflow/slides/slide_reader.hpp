#pragma once
// Reading whole-slide images: the one way histoflow reads a slide file. OpenSlide belongs to the slides plugin;
// every other plugin reads slides through this header (which names no OpenSlide type) and links
// libhistoflow_slides.so.
//
// A SlideReader is a lease on one of the process-wide pool's OpenSlide handles: slides are opened once and
// shared by every stage and plugin of the process (threads share a slide's handle and with it OpenSlide's
// cache of decoded tiles); idle slides beyond a few are closed. A handle whose read failed is retired: OpenSlide
// handles stay in their error state, so a SlideReader created after that gets another handle.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "histoflow/slides/image.hpp"

namespace histoflow::slides {

struct SlideLevel {
  std::int64_t width = 0;
  std::int64_t height = 0;
  double downsample = 1.0;
};

// What a slide file says about itself: vendor, pyramid levels, resolution and magnification.
struct SlideProperties {
  std::string vendor;
  std::vector<SlideLevel> levels;  // level 0 is the full resolution
  std::optional<double> mpp_x;     // microns per pixel at level 0
  std::optional<double> mpp_y;
  std::string mpp_source;          // the property it came from
  std::optional<double> objective_power;
};

// A read that failed: what() names the slide and the reason; reason() is the reader library's text alone.
class SlideReadError : public std::runtime_error {
 public:
  SlideReadError(const std::filesystem::path& path, const std::string& reason);
  ~SlideReadError() override;
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

class SlideReader {
 public:
  // Opens `path` through the process-wide pool (reusing an open handle). Throws std::runtime_error naming the
  // path and the reason ("file not found", "the file is empty", "not a slide format OpenSlide can read", ...).
  explicit SlideReader(const std::filesystem::path& path);
  // A handle of this reader's own, shared with no other reader and closed with it (for a retry that must fail
  // only for its own reasons: see read_with_retry).
  struct Unshared {};
  SlideReader(const std::filesystem::path& path, Unshared);
  SlideReader(SlideReader&&) noexcept;
  SlideReader& operator=(SlideReader&&) = delete;
  SlideReader(const SlideReader&) = delete;
  SlideReader& operator=(const SlideReader&) = delete;
  ~SlideReader();  // gives the handle back to the pool

  const std::filesystem::path& path() const;

  // Vendor, levels (dimensions, downsamples), mpp (the generic property, Aperio's key, or plausible TIFF
  // resolution tags) and objective power. Throws naming the slide when the file reports an error or has no
  // readable level.
  SlideProperties properties() const;

  // The level OpenSlide would read for `downsample` (the coarsest one not coarser than it).
  int best_level_for_downsample(double downsample) const;

  // The region of `width` x `height` pixels of `level` whose top-left corner is (x, y) in level-0 pixels, as
  // 8-bit RGB (row-major, interleaved) with transparent pixels composited over white. The first form writes
  // width * height * 3 bytes to `rgb`. Throws SlideReadError when the read fails (the handle is then retired).
  void read_region(std::int64_t x, std::int64_t y, int level, std::int64_t width, std::int64_t height,
                   std::uint8_t* rgb) const;
  RgbImage read_region(std::int64_t x, std::int64_t y, int level, std::int64_t width, std::int64_t height) const;

  // The whole slide at most `max_width` pixels wide: the coarsest level still at least that wide (level 0 when
  // none is), read whole and shrunk with area averaging to min(max_width, level width) pixels wide, the height
  // keeping level 0's aspect ratio.
  RgbImage thumbnail(int max_width) const;

  // Nothing needs the slide for now: its pooled handles, each with OpenSlide's cache of up to 32 MiB of decoded
  // tiles, are closed as soon as no SlideReader holds them. A SlideReader made later opens the slide again.
  static void close_when_idle(const std::filesystem::path& path);

 private:
  struct Lease;
  std::unique_ptr<Lease> lease_;
};

// read(reader) on a pooled handle of `path`. A handle enters OpenSlide's sticky error state when any read on it
// fails (the reader then retires it), and threads share handles: a read fails too when another thread's read on
// the same handle fails meanwhile. So a read that throws SlideReadError is tried once more on a handle of its
// own: only a read that fails there is really broken, and its SlideReadError propagates.
template <typename Read>
auto read_with_retry(const std::filesystem::path& path, Read&& read) {
  try {
    return read(SlideReader(path));
  } catch (const SlideReadError&) {
    return read(SlideReader(path, SlideReader::Unshared{}));
  }
}

}  // namespace histoflow::slides
