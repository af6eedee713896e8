#include "progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <string>

namespace histoflow {

namespace {
std::string clock_text(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return text;
}
}  // namespace

ProgressReporter::ProgressReporter(ProgressMode mode, std::chrono::milliseconds line_interval, std::int64_t total)
    : mode_(mode), interval_(line_interval), total_(total), start_(std::chrono::steady_clock::now()), last_(start_) {
  if (mode_ == ProgressMode::Auto) mode_ = ::isatty(STDERR_FILENO) ? ProgressMode::Bar : ProgressMode::Lines;
}

void ProgressReporter::update(std::uint64_t done, std::uint64_t started) {
  done_ = done;
  started_ = started;
  if (mode_ == ProgressMode::Off) return;
  const auto now = std::chrono::steady_clock::now();
  const auto wait = mode_ == ProgressMode::Bar ? std::chrono::milliseconds(200) : interval_;
  if (now - last_ < wait) return;
  last_ = now;
  draw(done, started, false);
}

void ProgressReporter::finish() {
  if (mode_ == ProgressMode::Off) return;
  if (drew_bar_) {
    draw(done_, started_, true);
    std::fputc('\n', stderr);
  }
}

void ProgressReporter::draw(std::uint64_t done, std::uint64_t started, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  std::string line;
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const double eta = rate > 0 ? static_cast<double>(total_ - static_cast<std::int64_t>(done)) / rate : 0;
    if (mode_ == ProgressMode::Bar) {
      const int width = 30;
      const int filled = static_cast<int>(fraction * width);
      line = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    }
    char text[160];
    std::snprintf(text, sizeof text, "%llu/%lld items (%3.0f%%)  %.1f items/s  elapsed %s  ETA %s",
                  static_cast<unsigned long long>(done), static_cast<long long>(total_), fraction * 100, rate,
                  clock_text(elapsed).c_str(), final ? "00:00:00" : clock_text(eta).c_str());
    line += text;
  } else {
    char text[160];
    std::snprintf(text, sizeof text, "%llu items done, %llu started  %.1f items/s  elapsed %s",
                  static_cast<unsigned long long>(done), static_cast<unsigned long long>(started), rate,
                  clock_text(elapsed).c_str());
    line = text;
  }
  if (mode_ == ProgressMode::Bar) {
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
    drew_bar_ = true;
  } else {
    std::fprintf(stderr, "progress: %s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace histoflow
