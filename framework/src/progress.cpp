#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace histoflow {

namespace {
using Clock = std::chrono::steady_clock;

std::string clock_text(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "--:--:--";  // unknown (no rate yet) or absurd
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return text;
}

std::string format(const char* pattern, auto... values) {
  char text[256];
  std::snprintf(text, sizeof text, pattern, values...);
  return text;
}

std::string bar(double fraction) {
  const int width = 30;
  const int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width);
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
}
}  // namespace

ProgressReporter::ProgressReporter(ProgressMode mode, std::chrono::milliseconds line_interval, std::int64_t total)
    : mode_(mode), interval_(line_interval), total_(total), start_(Clock::now()), last_(start_) {
  if (mode_ == ProgressMode::Auto) mode_ = ::isatty(STDERR_FILENO) ? ProgressMode::Bar : ProgressMode::Lines;
}

void ProgressReporter::update(const ProgressState& state) {
  state_ = state;
  if (mode_ == ProgressMode::Off) return;
  const auto now = Clock::now();
  const auto wait = mode_ == ProgressMode::Bar ? std::chrono::milliseconds(200) : interval_;
  if (now - last_ < wait) return;
  last_ = now;
  draw(false);
}

void ProgressReporter::finish() {
  if (mode_ == ProgressMode::Off) return;
  if (drew_bar_) {
    draw(true);
    std::fputc('\n', stderr);
  }
}

std::string ProgressReporter::line(const ProgressState& s, bool final) const {
  const auto now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const bool bars = mode_ == ProgressMode::Bar;

  // End of stream with a stage reporting its long work: that work is what the user waits for.
  if (s.end_of_stream && !s.stage.empty() && !final) {
    const double stage_elapsed = std::chrono::duration<double>(now - s.stage_since).count();
    const double f = s.stage_fraction;
    const double eta = f > 0 && f <= 1 ? stage_elapsed * (1 - f) / f : -1;
    return (bars && f >= 0 ? bar(f) : std::string()) + "end of stream: " + s.stage + ": " + s.stage_what +
           (f >= 0 ? format(" (%3.0f%%)", f * 100) : std::string()) + "  elapsed " + clock_text(elapsed) + "  ETA " +
           clock_text(eta);
  }

  std::string text;
  double fraction = -1;
  double eta = -1;
  const double item_rate = elapsed > 0 ? static_cast<double>(s.items_done) / elapsed : 0;
  const double tile_rate = elapsed > 0 ? static_cast<double>(s.tiles_done) / elapsed : 0;
  if (total_ > 0) {
    text = format("%llu/%lld items", static_cast<unsigned long long>(s.items_done), static_cast<long long>(total_));
    fraction = std::min(1.0, static_cast<double>(s.items_done) / static_cast<double>(total_));
    if (item_rate > 0) eta = static_cast<double>(total_ - static_cast<std::int64_t>(s.items_done)) / item_rate;
  } else {
    text = format("%llu items done, %llu started", static_cast<unsigned long long>(s.items_done),
                  static_cast<unsigned long long>(s.items_started));
  }
  if (s.tiles_seen > 0) {
    // Items expand into tiles: the tiles of the items started so far, extrapolated to every item, give a
    // finer fraction and an ETA that moves while one large slide is being encoded.
    text += format(", %llu/%llu tiles", static_cast<unsigned long long>(s.tiles_done),
                   static_cast<unsigned long long>(s.tiles_seen));
    if (total_ > 0 && s.items_started > 0) {
      const double expected = static_cast<double>(s.tiles_seen) * static_cast<double>(total_) /
                              static_cast<double>(std::min<std::uint64_t>(s.items_started, static_cast<std::uint64_t>(total_)));
      fraction = std::min(1.0, static_cast<double>(s.tiles_done) / expected);
      eta = tile_rate > 0 ? (expected - static_cast<double>(s.tiles_done)) / tile_rate : -1;
    }
  }
  if (fraction >= 0) text = (bars ? bar(fraction) : std::string()) + text + format(" (%3.0f%%)", fraction * 100);
  text += s.tiles_seen > 0 ? format("  %.1f tiles/s", tile_rate) : format("  %.1f items/s", item_rate);
  text += "  elapsed " + clock_text(elapsed);
  if (total_ > 0) text += "  ETA " + (final ? std::string("00:00:00") : clock_text(eta));
  if (s.end_of_stream && !final) text += "  (end of stream)";
  return text;
}

void ProgressReporter::draw(bool final) {
  const std::string text = line(state_, final);
  if (mode_ == ProgressMode::Bar) {
    std::fprintf(stderr, "\r%s\033[K", text.c_str());
    drew_bar_ = true;
  } else {
    std::fprintf(stderr, "progress: %s\n", text.c_str());
  }
  std::fflush(stderr);
}

}  // namespace histoflow
