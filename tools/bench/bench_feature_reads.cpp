// What reading feature files in a reader process costs (docs/features.md, "Reading in a reader process"): the
// public readers (histoflow-read-features, one process per read) against the same readers run in this process,
// in paired reads of the same files whose order alternates, on slide files of a real slide's size.
//   bench_feature_reads [--rows 20000] [--dim 1024] [--files 6] [--rounds 4] [--folder DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"
#include "histoflow/features/feature_file_in_process.hpp"

namespace fs = std::filesystem;
using namespace histoflow::features;

namespace {

double seconds_of(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

SlideFeatures slide(std::int64_t rows, std::int64_t dim, unsigned seed) {
  SlideFeatures s;
  s.features = {rows, dim, std::vector<float>(static_cast<std::size_t>(rows * dim))};
  std::mt19937 random(seed);
  std::normal_distribution<float> normal;
  for (auto& v : s.features.values) v = normal(random);
  for (std::int64_t i = 0; i < rows; ++i) s.coords.insert(s.coords.end(), {(i % 200) * 224, (i / 200) * 224});
  s.attributes = {{"encoder", std::string("dinov2_vitl14")}, {"tile_size", std::int64_t{224}}, {"mpp", 0.5}};
  s.coords_attributes = {{"patch_size", std::int64_t{224}}, {"patch_level", std::int64_t{0}}};
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t rows = 20000, dim = 1024;
  int files = 6, rounds = 4;
  fs::path folder = fs::temp_directory_path() / "histoflow-bench-feature-reads";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rows") rows = std::atoll(argv[i + 1]);
    else if (flag == "--dim") dim = std::atoll(argv[i + 1]);
    else if (flag == "--files") files = std::atoi(argv[i + 1]);
    else if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (flag == "--folder") folder = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  fs::create_directories(folder);
  std::vector<fs::path> paths;
  for (int f = 0; f < files; ++f) {
    paths.push_back(folder / ("slide" + std::to_string(f) + ".h5"));
    if (!fs::exists(paths.back())) write_slide_features(paths.back(), slide(rows, dim, f), StorageType::Float32, "{}");
  }
  std::printf("%d slide files of %lld x %lld float32 (%.0f MB each), %d rounds, paired reads alternating in order\n", files,
              static_cast<long long>(rows), static_cast<long long>(dim), fs::file_size(paths[0]) / 1e6, rounds);
  for (const auto& p : paths) (void)in_process::read_slide_features(p, true, true);  // page cache warm for both
  std::vector<double> whole_here, whole_process, attributes_here, attributes_process;
  for (int round = 0; round < rounds; ++round)
    for (std::size_t f = 0; f < paths.size(); ++f) {
      const auto& p = paths[f];
      const bool here_first = (round + f) % 2 == 0;
      for (int turn = 0; turn < 2; ++turn) {
        if ((turn == 0) == here_first) {
          whole_here.push_back(seconds_of([&] { (void)in_process::read_slide_features(p, true, true); }));
          attributes_here.push_back(seconds_of([&] { (void)in_process::read_feature_attributes(p); }));
        } else {
          whole_process.push_back(seconds_of([&] { (void)read_slide_features(p, true, true); }));
          attributes_process.push_back(seconds_of([&] { (void)read_feature_attributes(p); }));
        }
      }
    }
  const double here = median(whole_here), process = median(whole_process);
  std::printf("whole slide file (checksum, features, coords, attributes): in this process %.1f ms, in a reader process "
              "%.1f ms (+%.1f ms, x%.2f)\n", here * 1e3, process * 1e3, (process - here) * 1e3, process / here);
  std::printf("root attributes only: in this process %.2f ms, in a reader process %.2f ms (+%.2f ms)\n",
              median(attributes_here) * 1e3, median(attributes_process) * 1e3,
              (median(attributes_process) - median(attributes_here)) * 1e3);
  return 0;
}
