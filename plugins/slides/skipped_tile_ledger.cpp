#include "skipped_tile_ledger.hpp"

#include <iomanip>
#include <sstream>
#include <utility>

namespace histoflow::slides {

SkippedTileLedger::Outcome SkippedTileLedger::record(const std::string& slide, const std::string& path, std::int64_t tiles,
                                                     std::optional<SkippedTile> failure) {
  std::lock_guard lock(mutex_);
  SlideTally& tally = slides_[slide];
  tally.path = path;
  tally.tiles = tiles;
  ++tally.seen;
  Outcome outcome;
  if (failure) {
    ++tally.unreadable;
    // Counts, with a margin for the product's rounding: 2 of 40 tiles is 5%, allowed at max 0.05.
    if (tally.refused || static_cast<double>(tally.unreadable) > max_fraction_ * static_cast<double>(tiles) + 1e-9) {
      tally.refused = true;
      outcome.refused = true;
    } else {
      tally.skipped.push_back(std::move(*failure));
    }
  }
  outcome.unreadable = tally.unreadable;
  if (tally.seen >= tally.tiles) {
    outcome.finished = std::move(tally);
    slides_.erase(slide);
  }
  return outcome;
}

std::map<std::string, SlideTally> SkippedTileLedger::take_unfinished() {
  std::lock_guard lock(mutex_);
  return std::exchange(slides_, {});
}

std::string describe_losses(std::int64_t lost, std::int64_t tiles) {
  std::ostringstream text;
  text << lost << " of " << tiles << " tiles (" << std::fixed << std::setprecision(1)
       << (tiles > 0 ? 100.0 * static_cast<double>(lost) / static_cast<double>(tiles) : 0.0) << "%)";
  return text.str();
}

std::string describe_skipped(const std::vector<SkippedTile>& skipped, std::size_t limit) {
  std::string text;
  for (std::size_t i = 0; i < skipped.size() && i < limit; ++i)
    text += (i ? "; (" : "(") + std::to_string(skipped[i].x) + ", " + std::to_string(skipped[i].y) + ") level " +
            std::to_string(skipped[i].level) + ": " + skipped[i].error;
  if (skipped.size() > limit) text += "; and " + std::to_string(skipped.size() - limit) + " more";
  return text;
}

}  // namespace histoflow::slides
