// Reinhard colour transfer in CIELAB (stain_methods.hpp has the method in words), with the sRGB <-> CIELAB
// conversion it needs: sRGB transfer curve (IEC 61966-2-1), the sRGB primaries' RGB -> XYZ matrix, D65 white
// taken as that matrix applied to RGB (1, 1, 1) so that white is exactly L* = 100, a* = b* = 0.
#include <algorithm>
#include <cmath>
#include <limits>

#include "stain_methods.hpp"

namespace histoflow::slides {
namespace {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

constexpr Mat3 kRgbToXyz{{{0.4124564, 0.3575761, 0.1804375}, {0.2126729, 0.7151522, 0.0721750}, {0.0193339, 0.1191920, 0.9503041}}};
constexpr double kDelta = 6.0 / 29.0;

Mat3 inverse(const Mat3& m) {
  Mat3 r{};
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      // Cofactor of m[j][i] over the determinant (the adjugate is the transposed cofactor matrix).
      const int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
      r[i][j] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
    }
  return r;
}

const Mat3& xyz_to_rgb() {
  static const Mat3 m = inverse(kRgbToXyz);
  return m;
}

Vec3 multiply(const Mat3& m, const Vec3& v) {
  return {m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2], m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
          m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2]};
}

const Vec3& white() {
  static const Vec3 w = multiply(kRgbToXyz, {1, 1, 1});
  return w;
}

const std::array<double, 256>& linear_of_byte() {
  static const std::array<double, 256> table = [] {
    std::array<double, 256> t{};
    for (int v = 0; v < 256; ++v) {
      const double c = v / 255.0;
      t[v] = c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
    }
    return t;
  }();
  return table;
}

double lab_f(double t) { return t > kDelta * kDelta * kDelta ? std::cbrt(t) : t / (3 * kDelta * kDelta) + 4.0 / 29.0; }
double lab_f_inverse(double u) { return u > kDelta ? u * u * u : 3 * kDelta * kDelta * (u - 4.0 / 29.0); }
double srgb_encode(double c) { return c <= 0.0031308 ? 12.92 * c : 1.055 * std::pow(c, 1 / 2.4) - 0.055; }

// The 8-bit sRGB value of a linear intensity, rounded: the byte b whose interval [decode(b - 0.5),
// decode(b + 0.5)) holds it. A table indexed by the intensity in steps of 1/65536 gives the byte at the step's
// start; a step is narrower than any byte's interval (the narrowest, near black, is 1 / (255 * 12.92)), so at
// most one bound lies inside it. Cheaper than pow() and a bisection per channel.
struct LinearToByte {
  static constexpr int kSteps = 65536;
  std::array<double, 256> upper{};  // upper[b]: where byte b + 1 starts; upper[255] = infinity
  std::vector<std::uint8_t> at_step = std::vector<std::uint8_t>(kSteps + 1);

  LinearToByte() {
    for (int b = 0; b < 255; ++b) {
      const double c = (b + 0.5) / 255.0;
      upper[b] = c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
    }
    upper[255] = std::numeric_limits<double>::infinity();
    int b = 0;
    for (int q = 0; q <= kSteps; ++q) {
      while (static_cast<double>(q) / kSteps >= upper[b]) ++b;
      at_step[q] = static_cast<std::uint8_t>(b);
    }
  }

  std::uint8_t operator()(double linear) const {
    if (!(linear > 0)) return 0;  // also NaN
    if (linear >= 1) return 255;
    const std::uint8_t b = at_step[static_cast<std::size_t>(linear * kSteps)];
    return linear >= upper[b] ? b + 1 : b;
  }
};

Vec3 lab_to_linear(const Vec3& lab) {
  const double fy = (lab[0] + 16) / 116, fx = fy + lab[1] / 500, fz = fy - lab[2] / 200;
  const Vec3& w = white();
  return multiply(xyz_to_rgb(), {w[0] * lab_f_inverse(fx), w[1] * lab_f_inverse(fy), w[2] * lab_f_inverse(fz)});
}

}  // namespace

std::array<double, 3> srgb_to_lab(const std::uint8_t* rgb) {
  const auto& linear = linear_of_byte();
  const Vec3 xyz = multiply(kRgbToXyz, {linear[rgb[0]], linear[rgb[1]], linear[rgb[2]]});
  const Vec3& w = white();
  const double fx = lab_f(xyz[0] / w[0]), fy = lab_f(xyz[1] / w[1]), fz = lab_f(xyz[2] / w[2]);
  return {116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)};
}

std::array<double, 3> lab_to_srgb(const std::array<double, 3>& lab) {
  const Vec3 linear = lab_to_linear(lab);
  return {srgb_encode(linear[0]), srgb_encode(linear[1]), srgb_encode(linear[2])};
}

StainFitResult fit_reinhard(const std::uint8_t* rgb, std::size_t pixels, const StainOptions& options) {
  const auto od_of = optical_density_table(options.light_intensity);
  std::vector<Vec3> stained;
  stained.reserve(pixels);
  for (std::size_t i = 0; i < pixels; ++i) {
    const std::uint8_t* p = rgb + 3 * i;
    if (is_stained({od_of[p[0]], od_of[p[1]], od_of[p[2]]}, options.beta)) stained.push_back(srgb_to_lab(p));
  }
  const std::size_t needed = min_stained_pixels(pixels, options);
  if (stained.size() < needed)
    return {std::nullopt, std::to_string(stained.size()) + " of " + std::to_string(pixels) +
                              " pixels are stained (optical density >= beta in every channel); a Reinhard fit needs " +
                              std::to_string(needed)};
  ReinhardStats stats;
  const auto n = static_cast<double>(stained.size());
  for (const auto& lab : stained)
    for (int k = 0; k < 3; ++k) stats.mean[k] += lab[k];
  for (auto& m : stats.mean) m /= n;
  for (const auto& lab : stained)
    for (int k = 0; k < 3; ++k) stats.std[k] += (lab[k] - stats.mean[k]) * (lab[k] - stats.mean[k]);
  for (auto& s : stats.std) s = std::sqrt(s / n);
  if (!(stats.std[0] > 1e-6 && stats.std[1] > 1e-6 && stats.std[2] > 1e-6))
    return {std::nullopt, "a CIELAB channel does not vary over the stained pixels"};
  return {stats, {}};
}

void apply_reinhard(const ReinhardStats& source, const ReinhardStats& target, const std::uint8_t* in, std::uint8_t* out,
                    std::size_t pixels) {
  Vec3 gain, offset;  // lab -> (lab - source mean) / source std * target std + target mean
  for (int k = 0; k < 3; ++k) {
    gain[k] = target.std[k] / source.std[k];
    offset[k] = target.mean[k] - source.mean[k] * gain[k];
  }
  static const LinearToByte to_byte;
  for (std::size_t i = 0; i < pixels; ++i) {
    const Vec3 lab = srgb_to_lab(in + 3 * i);
    const Vec3 linear = lab_to_linear({lab[0] * gain[0] + offset[0], lab[1] * gain[1] + offset[1], lab[2] * gain[2] + offset[2]});
    for (int k = 0; k < 3; ++k) out[3 * i + k] = to_byte(linear[k]);
  }
}

}  // namespace histoflow::slides
