#pragma once
// tile_reader's bookkeeping under on_tile_error = "skip_tile": per slide, how many of its tiles were read and
// which could not be, so that a slide is refused once too many of its tiles are lost, and a slide's losses can be
// reported once all its tiles have been seen. Thread-safe (tiles of one slide are read concurrently).
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace histoflow::slides {

struct SkippedTile {
  std::int64_t x = 0, y = 0;  // level-0 position of the tile's corner
  int level = 0;              // the pyramid level it was read from
  std::string error;          // the reader's reason
};

struct SlideTally {
  std::string path;                  // the slide file, for messages
  std::int64_t tiles = 0;            // tiles in the slide's grid
  std::int64_t seen = 0;             // tiles accounted for so far, read or not
  std::int64_t unreadable = 0;       // skipped ones and those that failed the slide
  std::vector<SkippedTile> skipped;  // left out: the slide goes on without them
  bool refused = false;              // too many unreadable tiles: the slide failed
};

class SkippedTileLedger {
 public:
  explicit SkippedTileLedger(double max_skipped_fraction) : max_fraction_(max_skipped_fraction) {}

  struct Outcome {
    bool refused = false;              // this unreadable tile takes the slide over the limit: fail it
    std::int64_t unreadable = 0;       // the slide's unreadable tiles so far, this one included
    std::optional<SlideTally> finished;  // after the slide's last tile: its tally (the ledger forgets the slide)
  };

  // Accounts for one tile of `slide` (whose grid has `tiles` tiles): read when `failure` is empty, otherwise
  // skipped, or refused when the slide's unreadable tiles would then exceed the fraction of its grid.
  Outcome record(const std::string& slide, const std::string& path, std::int64_t tiles, std::optional<SkippedTile> failure);

  // Slides some of whose tiles never reached the reader (a sampler reads a few tiles per slide, or a tile
  // failed for another reason): their tallies, at the end of the stream; the ledger is empty afterwards.
  std::map<std::string, SlideTally> take_unfinished();

  double max_fraction() const { return max_fraction_; }

 private:
  double max_fraction_;
  std::mutex mutex_;
  std::map<std::string, SlideTally> slides_;
};

// "1 of 40 tiles (2.5%)": how a slide's losses are counted in messages.
std::string describe_losses(std::int64_t lost, std::int64_t tiles);
// "(768, 768) level 0: <error>; ..." for at most `limit` tiles, then "and N more".
std::string describe_skipped(const std::vector<SkippedTile>& skipped, std::size_t limit = 10);

}  // namespace histoflow::slides
