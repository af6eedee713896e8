// The progress line: it moves with tiles while one large slide is encoded, never claims an ETA it cannot know,
// and shows a stage's long end-of-stream work.
#include <catch2/catch.hpp>
#include <thread>

#include "progress.hpp"

using namespace histoflow;

TEST_CASE("progress counts tiles, so one large slide shows movement and an ETA", "[progress]") {
  ProgressReporter reporter(ProgressMode::Lines, std::chrono::milliseconds(10000), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // some elapsed time, so rates exist
  ProgressState state;
  state.items_started = 1;
  state.tiles_seen = 2457;
  state.tiles_done = 912;
  const std::string line = reporter.line(state, false);
  CHECK_THAT(line, Catch::StartsWith("0/1 items, 912/2457 tiles ( 37%)"));
  CHECK_THAT(line, Catch::Contains("tiles/s"));
  CHECK_THAT(line, !Catch::Contains("ETA --:--:--") && Catch::Contains("ETA "));

  state.tiles_done = 0;  // nothing finished yet: no rate, so no ETA rather than a false 00:00:00
  CHECK_THAT(reporter.line(state, false), Catch::EndsWith("ETA --:--:--"));
}

TEST_CASE("tiles of the slides started so far are extrapolated to the whole cohort", "[progress]") {
  ProgressReporter reporter(ProgressMode::Lines, std::chrono::milliseconds(10000), 10);
  ProgressState state;
  state.items_done = 1;
  state.items_started = 2;
  state.tiles_seen = 200;  // 100 per slide so far: about 1000 for the 10 slides
  state.tiles_done = 100;
  CHECK_THAT(reporter.line(state, false), Catch::StartsWith("1/10 items, 100/200 tiles ( 10%)"));
}

TEST_CASE("at end of stream the line shows the stage's long work with its own ETA", "[progress]") {
  ProgressReporter reporter(ProgressMode::Lines, std::chrono::milliseconds(10000), 4);
  ProgressState state;
  state.items_done = state.items_started = 4;
  state.end_of_stream = true;
  state.stage = "mil_resnet";
  state.stage_what = "fold 2/5, epoch 3/20";
  state.stage_fraction = 0.25;
  state.stage_since = std::chrono::steady_clock::now() - std::chrono::seconds(30);
  const std::string line = reporter.line(state, false);
  CHECK_THAT(line, Catch::StartsWith("end of stream: mil_resnet: fold 2/5, epoch 3/20 ( 25%)"));
  CHECK_THAT(line, Catch::EndsWith("ETA 00:01:30"));  // 30 s for a quarter: 90 s to go
  state.stage_fraction = -1;  // a stage that cannot say how far it is
  CHECK_THAT(reporter.line(state, false), Catch::EndsWith("ETA --:--:--"));
}
