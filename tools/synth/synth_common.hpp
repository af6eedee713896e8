// Shared building blocks of the synthetic-cohort generator: seeded random numbers, value noise,
// polygons with an exact raster rule, stains and concentration planes.
//
// Everything here is deterministic: the same seed gives the same numbers on every run of the same binary,
// and nothing depends on thread scheduling (per-pixel randomness is a hash of the pixel position).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace synth {

// SplitMix64 finaliser: a good 64-bit mixing function.
inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint64_t hash2(uint64_t a, uint64_t b) { return mix64(a ^ mix64(b + 0x632be59bd9b4e019ULL)); }

inline uint64_t hash_str(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return mix64(h);
}

// Seed of an independent stream, named by a tag and an index (e.g. "train", slide 3).
inline uint64_t derive(uint64_t seed, std::string_view tag, uint64_t index = 0) {
  return hash2(hash2(seed, hash_str(tag)), index);
}

// xoshiro256** with our own distributions (std:: distributions differ between standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t z = seed;
    for (auto& w : s_) {
      z += 0x9e3779b97f4a7c15ULL;
      w = mix64(z);
    }
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int range(int lo, int hi) {  // inclusive
    return lo + int(uniform() * double(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }
  double normal() {
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_{};
};

// Uniform value in [0,1) for a pixel position: no shared state, so rows can be painted in parallel.
inline double hash_unit(uint64_t seed, uint64_t x, uint64_t y) {
  return double(hash2(seed, (y << 32) ^ x) >> 11) * 0x1.0p-53;
}

// Smooth 2-D value noise in [0,1] over a 256x256 periodic lattice.
class ValueNoise {
 public:
  explicit ValueNoise(uint64_t seed) {
    Rng r(seed);
    for (auto& v : table_) v = float(r.uniform());
  }
  float operator()(float x, float y) const {
    const float fx = std::floor(x), fy = std::floor(y);
    const int ix = int(fx), iy = int(fy);
    float tx = x - fx, ty = y - fy;
    tx = tx * tx * (3.0f - 2.0f * tx);
    ty = ty * ty * (3.0f - 2.0f * ty);
    const int x0 = ix & 255, x1 = (ix + 1) & 255, y0 = iy & 255, y1 = (iy + 1) & 255;
    const float a = table_[(y0 << 8) | x0], b = table_[(y0 << 8) | x1];
    const float c = table_[(y1 << 8) | x0], d = table_[(y1 << 8) | x1];
    return a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty;
  }

 private:
  std::array<float, 65536> table_{};
};

struct Point {
  int x = 0, y = 0;
};
using Polygon = std::vector<Point>;

// The raster rule every consumer of layout.json can reproduce: pixel (x, y) belongs to a polygon when its
// centre (x+0.5, y+0.5) is inside by the even-odd rule. Vertices are integers, so a centre row never passes
// through a vertex; along a row, a crossing at X includes the pixels with X <= x+0.5 < X' (left-closed).
// Calls fn(y, x_begin, x_end) for every run of covered pixels, clipped to [0,W) x [0,H).
template <class F>
void for_each_span(const Polygon& poly, int width, int height, F&& fn) {
  if (poly.size() < 3) return;
  int ymin = poly[0].y, ymax = poly[0].y;
  for (const auto& p : poly) {
    ymin = std::min(ymin, p.y);
    ymax = std::max(ymax, p.y);
  }
  const int y0 = std::max(0, ymin), y1 = std::min(height, ymax);
  std::vector<double> xs;
  const size_t n = poly.size();
  for (int y = y0; y < y1; ++y) {
    const double yc = y + 0.5;
    xs.clear();
    for (size_t i = 0; i < n; ++i) {
      const Point& a = poly[i];
      const Point& b = poly[(i + 1) % n];
      if ((a.y <= yc) != (b.y <= yc)) xs.push_back(a.x + (yc - a.y) * double(b.x - a.x) / double(b.y - a.y));
    }
    std::sort(xs.begin(), xs.end());
    for (size_t k = 0; k + 1 < xs.size(); k += 2) {
      const int xa = std::max(0, int(std::ceil(xs[k] - 0.5)));
      const int xb = std::min(width, int(std::ceil(xs[k + 1] - 0.5)));
      if (xa < xb) fn(y, xa, xb);
    }
  }
}

// Beer-Lambert stain model: RGB = I0 * exp(-(cH * h_od * h_scale + cE * e_od * e_scale)).
struct Stain {
  std::array<double, 3> i0{242, 240, 244};
  std::array<double, 3> h_od{0.65, 0.70, 0.29};  // haematoxylin: purple-blue
  std::array<double, 3> e_od{0.08, 0.74, 0.36};  // eosin: pink
  double h_scale = 1.0;
  double e_scale = 1.0;
};

// Stain concentrations per pixel, stored as bytes: concentration = value / 100.
struct Planes {
  int width = 0, height = 0;
  std::vector<uint8_t> h, e;
  Planes(int w, int hgt) : width(w), height(hgt), h(size_t(w) * hgt, 0), e(size_t(w) * hgt, 0) {}
};

inline uint8_t conc_byte(double c) { return uint8_t(std::clamp(c * 100.0 + 0.5, 0.0, 255.0)); }

// Lookup table (cH byte, cE byte) -> RGB.
class StainLut {
 public:
  explicit StainLut(const Stain& s) : v_(256 * 256 * 3) {
    for (int qh = 0; qh < 256; ++qh)
      for (int qe = 0; qe < 256; ++qe)
        for (int c = 0; c < 3; ++c) {
          const double od = qh / 100.0 * s.h_scale * s.h_od[c] + qe / 100.0 * s.e_scale * s.e_od[c];
          const double val = s.i0[c] * std::exp(-od);
          v_[(size_t(qh) * 256 + qe) * 3 + c] = uint8_t(std::clamp(std::lround(val), 0L, 255L));
        }
  }
  const uint8_t* operator()(uint8_t qh, uint8_t qe) const { return &v_[(size_t(qh) * 256 + qe) * 3]; }

 private:
  std::vector<uint8_t> v_;
};

}  // namespace synth
