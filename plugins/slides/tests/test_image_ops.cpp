// Tissue masks, contours and resampling on images whose answers are known.
#include <catch2/catch.hpp>
#include <cmath>

#include "shuffled_index.hpp"
#include "argb.hpp"
#include "histoflow/slides/resample.hpp"
#include "tissue_mask.hpp"

using namespace histoflow::slides;

namespace {

// White glass with a pink disk of radius r (optionally with a white hole of radius h) and a few specks.
RgbImage disk_image(int size, int r, int hole = 0) {
  RgbImage image{size, size, std::vector<std::uint8_t>(static_cast<std::size_t>(size) * size * 3, 0)};
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const double d = std::hypot(x - size / 2.0, y - size / 2.0);
      const bool tissue = d < r && d >= hole;
      std::uint8_t* p = image.at(x, y);
      p[0] = tissue ? 220 : static_cast<std::uint8_t>(240 + (x * 7 + y * 3) % 5);
      p[1] = tissue ? 120 : static_cast<std::uint8_t>(240 + (x * 3 + y * 5) % 5);
      p[2] = tissue ? 180 : static_cast<std::uint8_t>(242 + (x + y) % 4);
    }
  image.at(5, 5)[1] = 60;  // one saturated speck far from the disk
  return image;
}

std::int64_t area(const Mask& m) {
  std::int64_t n = 0;
  for (auto v : m.data) n += v;
  return n;
}

}  // namespace

TEST_CASE("otsu separates a bimodal histogram between its modes", "[mask]") {
  std::vector<std::uint8_t> values;
  for (int i = 0; i < 1000; ++i) values.push_back(static_cast<std::uint8_t>(10 + i % 5));
  for (int i = 0; i < 300; ++i) values.push_back(static_cast<std::uint8_t>(150 + i % 9));
  const int t = otsu_threshold(values);
  CHECK(t > 14);
  CHECK(t <= 150);
}

TEST_CASE("tissue mask finds the disk, drops the speck, fills the hole", "[mask]") {
  const RgbImage image = disk_image(200, 60, 15);
  TissueMaskOptions options;
  options.min_piece_pixels = 20;
  const TissueMaskResult result = tissue_mask(image, options);
  const double expected = M_PI * 60 * 60;  // the hole is filled
  CHECK(std::abs(static_cast<double>(area(result.mask)) - expected) / expected < 0.05);
  CHECK(result.mask.at(100, 100) == 1);  // centre of the hole
  CHECK(result.mask.at(5, 5) == 0);      // the speck is gone
  options.fill_holes = false;
  CHECK(tissue_mask(image, options).mask.at(100, 100) == 0);
}

TEST_CASE("a slide of plain glass has no tissue, whatever Otsu's threshold", "[mask]") {
  const RgbImage glass = disk_image(120, 0);
  TissueMaskOptions options;
  options.min_piece_pixels = 4;
  const TissueMaskResult result = tissue_mask(glass, options);
  CHECK(area(result.mask) == 0);
  CHECK(result.threshold >= options.min_saturation);
}

TEST_CASE("contours trace the outer boundary along pixel edges", "[mask][contours]") {
  Mask m{6, 5, std::vector<std::uint8_t>(30, 0)};
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 4; ++x) m.at(x, y) = 1;
  m.at(4, 1) = 0;  // a notch in the top-right corner: an L-shaped hexagon
  const auto rings = trace_contours(m);
  REQUIRE(rings.size() == 1);
  const std::vector<std::pair<int, int>> expected{{1, 1}, {4, 1}, {4, 2}, {5, 2}, {5, 4}, {1, 4}, {1, 1}};
  CHECK(rings[0] == expected);
  Mask two{5, 1, {1, 0, 0, 1, 1}};
  CHECK(trace_contours(two).size() == 2);
}

TEST_CASE("resizing: shrinking averages areas, constants stay constant, identity copies", "[resample]") {
  // 4x2 image: left half red, right half blue; shrinking to 2x1 gives one red and one blue pixel.
  std::vector<std::uint8_t> src = {255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255,
                                   255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255};
  std::vector<std::uint8_t> dst(2 * 1 * 3);
  resize_rgb(src.data(), 4, 2, dst.data(), 2, 1);
  CHECK(dst == std::vector<std::uint8_t>{255, 0, 0, 0, 0, 255});
  // A 3:2 shrink: the middle output pixel mixes half of each neighbour.
  std::vector<std::uint8_t> ramp = {0, 0, 0, 90, 90, 90, 180, 180, 180};
  std::vector<std::uint8_t> out(2 * 3);
  resize_rgb(ramp.data(), 3, 1, out.data(), 2, 1);
  CHECK(static_cast<int>(out[0]) == 30);   // (0 * 1 + 90 * 0.5) / 1.5
  CHECK(static_cast<int>(out[3]) == 150);  // (90 * 0.5 + 180 * 1) / 1.5
  RgbImage grey{7, 5, std::vector<std::uint8_t>(7 * 5 * 3, 77)};
  for (auto [w, h] : {std::pair{3, 2}, std::pair{14, 9}, std::pair{7, 5}}) {
    const RgbImage r = resize_rgb(grey, w, h);
    for (auto v : r.pixels) CHECK(static_cast<int>(v) == 77);
  }
}

TEST_CASE("premultiplied ARGB over white: transparent is white, opaque keeps its colour", "[resample]") {
  const std::uint32_t argb[3] = {0x00000000u, 0xff102030u, 0x80400000u};  // clear, opaque, half-transparent red
  std::uint8_t rgb[9];
  argb_over_white_to_rgb(argb, 3, rgb);
  CHECK(std::vector<int>(rgb, rgb + 3) == std::vector<int>{255, 255, 255});
  CHECK(std::vector<int>(rgb + 3, rgb + 6) == std::vector<int>{16, 32, 48});
  CHECK(std::vector<int>(rgb + 6, rgb + 9) == std::vector<int>{64 + 127, 127, 127});
}

TEST_CASE("shuffled_index is a permutation of 0..n-1 for every key, and keys give different orders", "[slides][sampling]") {
  for (const std::uint64_t n : {1ULL, 2ULL, 3ULL, 7ULL, 64ULL, 1000ULL, 4097ULL}) {
    std::vector<std::uint64_t> first;
    for (const std::uint64_t key : {0ULL, 1ULL, 0xdeadbeefULL}) {
      std::vector<bool> seen(n, false);
      std::vector<std::uint64_t> order;
      for (std::uint64_t p = 0; p < n; ++p) {
        const std::uint64_t i = histoflow::slides::shuffled_index(p, n, key);
        REQUIRE(i < n);
        REQUIRE_FALSE(seen[i]);
        seen[i] = true;
        order.push_back(i);
      }
      if (first.empty()) first = order;
      else if (n >= 7) CHECK(order != first);
    }
  }
  CHECK_THROWS(histoflow::slides::shuffled_index(5, 5, 0));
}
