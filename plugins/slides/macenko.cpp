// Macenko stain estimation and normalisation (stain_methods.hpp has the method in words).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "stain_methods.hpp"

namespace histoflow::slides {
namespace {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

std::uint8_t to_byte(double value) {
  if (!(value > 0)) return 0;  // also NaN, which cannot arise from finite fits but must never leak out
  if (value >= 255) return 255;
  return static_cast<std::uint8_t>(std::lround(value));
}

// Eigenvalues (ascending) and unit eigenvectors of a symmetric 3x3 matrix, by cyclic Jacobi rotations.
void symmetric_eigen(Mat3 a, Vec3& values, Mat3& vectors) {
  Mat3 v{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};  // columns: eigenvectors
  for (int sweep = 0; sweep < 64; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    const double diagonal = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
    if (off <= 1e-30 * diagonal || off == 0) break;
    for (const auto& [p, q] : {std::pair{0, 1}, std::pair{0, 2}, std::pair{1, 2}}) {
      if (a[p][q] == 0) continue;
      const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
      const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
      const double c = 1 / std::sqrt(t * t + 1), s = t * c;
      for (int k = 0; k < 3; ++k) {
        const double kp = a[k][p], kq = a[k][q];
        a[k][p] = c * kp - s * kq;
        a[k][q] = s * kp + c * kq;
      }
      for (int k = 0; k < 3; ++k) {
        const double pk = a[p][k], qk = a[q][k];
        a[p][k] = c * pk - s * qk;
        a[q][k] = s * pk + c * qk;
      }
      for (int k = 0; k < 3; ++k) {
        const double kp = v[k][p], kq = v[k][q];
        v[k][p] = c * kp - s * kq;
        v[k][q] = s * kp + c * kq;
      }
    }
  }
  std::array<int, 3> order{0, 1, 2};
  std::sort(order.begin(), order.end(), [&](int i, int j) { return a[i][i] < a[j][j]; });
  for (int i = 0; i < 3; ++i) {
    values[i] = a[order[i]][order[i]];
    for (int k = 0; k < 3; ++k) vectors[i][k] = v[k][order[i]];
  }
}

// Eigenvectors have no sign; fix one (largest-magnitude component positive) so that fits are reproducible.
void orient(Vec3& v) {
  const auto largest = std::max_element(v.begin(), v.end(), [](double x, double y) { return std::abs(x) < std::abs(y); });
  if (*largest < 0)
    for (auto& x : v) x = -x;
}

// Least-squares concentrations of an OD vector on the two stain vectors: (S^T S)^-1 S^T od.
struct Unmixing {
  Vec3 h, e;
  double inverse[2][2];
  std::array<double, 2> operator()(const Vec3& od) const {
    const double ph = dot(h, od), pe = dot(e, od);
    return {inverse[0][0] * ph + inverse[0][1] * pe, inverse[1][0] * ph + inverse[1][1] * pe};
  }
};

// Null when the two vectors are (nearly) parallel: concentrations would be meaningless.
std::optional<Unmixing> unmixing(const MacenkoStains& stains) {
  const Vec3& h = stains.vectors[0];
  const Vec3& e = stains.vectors[1];
  const double hh = dot(h, h), he = dot(h, e), ee = dot(e, e);
  const double det = hh * ee - he * he;
  if (!(det > 1e-10)) return std::nullopt;
  return Unmixing{h, e, {{ee / det, -he / det}, {-he / det, hh / det}}};
}

}  // namespace

StainFitResult fit_macenko(const std::uint8_t* rgb, std::size_t pixels, const StainOptions& options) {
  const auto od_of = optical_density_table(options.light_intensity);
  const auto od_at = [&](std::size_t i) -> Vec3 {
    const std::uint8_t* p = rgb + 3 * i;
    return {od_of[p[0]], od_of[p[1]], od_of[p[2]]};
  };
  std::vector<Vec3> stained;
  stained.reserve(pixels);
  for (std::size_t i = 0; i < pixels; ++i)
    if (const Vec3 od = od_at(i); is_stained(od, options.beta)) stained.push_back(od);
  const std::size_t needed = min_stained_pixels(pixels, options);
  if (stained.size() < needed)
    return {std::nullopt, std::to_string(stained.size()) + " of " + std::to_string(pixels) +
                              " pixels are stained (optical density >= beta in every channel); a Macenko fit needs " +
                              std::to_string(needed)};

  // The plane of the two largest eigenvectors of the stained pixels' OD covariance.
  Vec3 mean{};
  for (const auto& v : stained)
    for (int k = 0; k < 3; ++k) mean[k] += v[k];
  for (auto& m : mean) m /= static_cast<double>(stained.size());
  Mat3 covariance{};
  for (const auto& v : stained)
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) covariance[r][c] += (v[r] - mean[r]) * (v[c] - mean[c]);
  for (auto& row : covariance)
    for (auto& x : row) x /= static_cast<double>(stained.size() - 1);
  Vec3 eigenvalues;
  Mat3 eigenvectors;
  symmetric_eigen(covariance, eigenvalues, eigenvectors);
  if (!(eigenvalues[2] > 1e-12)) return {std::nullopt, "every stained pixel has the same colour"};
  Vec3 second = eigenvectors[1], first = eigenvectors[2];
  orient(second);
  orient(first);

  // The extreme angles in that plane (robustly: percentiles) are the two stains.
  std::vector<double> angles(stained.size());
  for (std::size_t i = 0; i < stained.size(); ++i) angles[i] = std::atan2(dot(stained[i], first), dot(stained[i], second));
  const double min_angle = percentile(angles, options.alpha);
  const double max_angle = percentile(std::move(angles), 100 - options.alpha);
  Vec3 at_min, at_max;
  for (int k = 0; k < 3; ++k) {
    at_min[k] = std::cos(min_angle) * second[k] + std::sin(min_angle) * first[k];
    at_max[k] = std::cos(max_angle) * second[k] + std::sin(max_angle) * first[k];
  }
  MacenkoStains stains;
  // Haematoxylin absorbs more red than eosin does.
  stains.vectors = at_min[0] > at_max[0] ? std::array<Vec3, 2>{at_min, at_max} : std::array<Vec3, 2>{at_max, at_min};
  const auto unmix = unmixing(stains);
  if (!unmix) return {std::nullopt, "the stained pixels show a single stain direction"};

  // Maximal concentrations: 99th percentiles over every pixel of the image (background included), as the
  // method's reference implementation computes them.
  std::vector<double> h(pixels), e(pixels);
  for (std::size_t i = 0; i < pixels; ++i) {
    const auto c = (*unmix)(od_at(i));
    h[i] = c[0];
    e[i] = c[1];
  }
  stains.max_concentrations = {percentile(std::move(h), 99), percentile(std::move(e), 99)};
  if (!(stains.max_concentrations[0] > 1e-6 && stains.max_concentrations[1] > 1e-6))
    return {std::nullopt, "a stain's 99th percentile concentration is not positive"};
  return {stains, {}};
}

void apply_macenko(const MacenkoStains& source, const MacenkoStains& target, const std::uint8_t* in, std::uint8_t* out,
                   std::size_t pixels, const StainOptions& options) {
  const auto unmix = unmixing(source);
  if (!unmix) throw std::invalid_argument("Macenko source stains are parallel");  // fits never are
  const auto od_of = optical_density_table(options.light_intensity);
  const double scale_h = target.max_concentrations[0] / source.max_concentrations[0];
  const double scale_e = target.max_concentrations[1] / source.max_concentrations[1];
  const Vec3& th = target.vectors[0];
  const Vec3& te = target.vectors[1];
  for (std::size_t i = 0; i < pixels; ++i) {
    const std::uint8_t* p = in + 3 * i;
    const auto c = (*unmix)({od_of[p[0]], od_of[p[1]], od_of[p[2]]});
    const double h = c[0] * scale_h, e = c[1] * scale_e;
    for (int k = 0; k < 3; ++k) out[3 * i + k] = to_byte(options.light_intensity * std::exp(-(th[k] * h + te[k] * e)));
  }
}

}  // namespace histoflow::slides
