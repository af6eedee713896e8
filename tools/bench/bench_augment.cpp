// Throughput of DINOv2's multi-crop augmentation in histoflow (plugins/augment): crops plus the trainer's
// normalisation to float, per image, on T threads (a oneTBB arena, as the multi_crop stage runs). The tiles are
// made and decoded before the clock starts (the Python side gets PIL images in memory too).
//   bench_augment [--threads T] [--images N] [--tiles K] [--size S] [--local-number L]
// Prints one JSON line: {"threads", "images", "seconds", "images_per_second"}.
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "histoflow/augment/dino_augmentation.hpp"

using namespace histoflow;
using namespace histoflow::augment;

namespace {

// An H&E-like tile: pink stroma with noise and purple nuclei (what the demo's patch set looks like).
RgbImage make_tile(int size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 12);
  std::uniform_real_distribution<double> unit(0, 1);
  RgbImage t;
  t.width = t.height = size;
  t.pixels.resize(static_cast<std::size_t>(size) * size * 3);
  for (std::size_t i = 0; i < t.pixels.size(); i += 3) {
    const double n = noise(rng);
    t.pixels[i] = static_cast<std::uint8_t>(std::clamp(230 + n, 0.0, 255.0));
    t.pixels[i + 1] = static_cast<std::uint8_t>(std::clamp(160 + n, 0.0, 255.0));
    t.pixels[i + 2] = static_cast<std::uint8_t>(std::clamp(200 + n, 0.0, 255.0));
  }
  for (int k = 0; k < size * size / 300; ++k) {
    const double cx = unit(rng) * size, cy = unit(rng) * size, r = 3 + 4 * unit(rng);
    for (int y = std::max(0, int(cy - r)); y < std::min(size, int(cy + r) + 1); ++y)
      for (int x = std::max(0, int(cx - r)); x < std::min(size, int(cx + r) + 1); ++x)
        if (std::hypot(x - cx, y - cy) <= r) {
          std::uint8_t* p = t.at(x, y);
          p[0] = 90, p[1] = 50, p[2] = 140;
        }
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, images = 256, tiles = 32, size = 224;
  std::int64_t local_number = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::stoi(argv[i + 1]);
    if (flag == "--threads") threads = value;
    else if (flag == "--images") images = value;
    else if (flag == "--tiles") tiles = value;
    else if (flag == "--size") size = value;
    else if (flag == "--local-number") local_number = value;
    else {
      std::cerr << "unknown option " << flag << "\n";
      return 2;
    }
  }
  std::vector<RgbImage> source;
  for (int k = 0; k < tiles; ++k) source.push_back(make_tile(size, 1000 + static_cast<std::uint64_t>(k)));
  MultiCropRecipe recipe;
  recipe.layout.local_number = local_number;
  const CropsLayout& layout = recipe.layout;
  tbb::task_arena arena(threads);
  const auto start = std::chrono::steady_clock::now();
  arena.execute([&] {
    tbb::parallel_for(0, images, [&](int sample) {
      // What one image costs in a run: its crops (the stage's packet) and their normalisation (the trainer's batch).
      std::vector<std::uint8_t> crops(layout.total_bytes());
      multi_crop(source[static_cast<std::size_t>(sample % tiles)], recipe, 7, static_cast<std::uint64_t>(sample), crops.data());
      std::vector<float> normalised(layout.total_bytes());
      for (std::int64_t c = 0; c < layout.global_number + layout.local_number; ++c)
        normalise_crop(crops.data() + layout.offset(c), c < layout.global_number ? layout.global_size : layout.local_size,
                       normalised.data() + layout.offset(c));
    });
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << nlohmann::json{{"threads", threads}, {"images", images}, {"seconds", seconds}, {"images_per_second", images / seconds}}.dump()
            << "\n";
}
