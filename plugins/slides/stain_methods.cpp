// What both stain methods share: optical density, the stained-pixel test, percentiles, and the dispatch on the
// method. The methods themselves are in macenko.cpp and reinhard.cpp.
#include "stain_methods.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace histoflow::slides {

double percentile(std::vector<double> values, double percent) {
  if (values.empty()) throw std::invalid_argument("percentile of no values");
  // numpy's "linear": the value at fractional rank (n - 1) * p / 100.
  const double rank = (static_cast<double>(values.size()) - 1) * std::clamp(percent, 0.0, 100.0) / 100.0;
  const auto below = static_cast<std::size_t>(std::floor(rank));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(below), values.end());
  const double low = values[below];
  if (above == below) return low;
  const double high = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(below) + 1, values.end());
  return low + (high - low) * (rank - static_cast<double>(below));
}

std::array<double, 3> optical_density(const std::uint8_t* rgb, double light_intensity) {
  return {-std::log((rgb[0] + 1.0) / light_intensity), -std::log((rgb[1] + 1.0) / light_intensity),
          -std::log((rgb[2] + 1.0) / light_intensity)};
}

std::array<double, 256> optical_density_table(double light_intensity) {
  std::array<double, 256> table{};
  for (int v = 0; v < 256; ++v) {
    const std::uint8_t rgb[3] = {std::uint8_t(v), std::uint8_t(v), std::uint8_t(v)};
    table[v] = optical_density(rgb, light_intensity)[0];
  }
  return table;
}

bool is_stained(const std::array<double, 3>& od, double beta) { return od[0] >= beta && od[1] >= beta && od[2] >= beta; }

std::size_t min_stained_pixels(std::size_t pixels, const StainOptions& options) {
  const auto fraction = static_cast<std::size_t>(std::ceil(options.min_stained_fraction * static_cast<double>(pixels)));
  return std::max(fraction, kMinStainedPixels);
}

StainFitResult fit_stains(StainMethod method, const std::uint8_t* rgb, std::size_t pixels, const StainOptions& options) {
  return method == StainMethod::Macenko ? fit_macenko(rgb, pixels, options) : fit_reinhard(rgb, pixels, options);
}

void apply_stains(const StainFit& source, const StainFit& target, const std::uint8_t* in, std::uint8_t* out,
                  std::size_t pixels, const StainOptions& options) {
  if (source.index() != target.index()) throw std::logic_error("stain fits of different methods");
  if (const auto* macenko = std::get_if<MacenkoStains>(&source))
    apply_macenko(*macenko, std::get<MacenkoStains>(target), in, out, pixels, options);
  else
    apply_reinhard(std::get<ReinhardStats>(source), std::get<ReinhardStats>(target), in, out, pixels);
}

std::string describe(const StainFit& fit) {
  char text[256];
  if (const auto* m = std::get_if<MacenkoStains>(&fit)) {
    const auto& h = m->vectors[0];
    const auto& e = m->vectors[1];
    std::snprintf(text, sizeof text, "macenko H=(%.6f, %.6f, %.6f) E=(%.6f, %.6f, %.6f) max concentrations (%.6f, %.6f)",
                  h[0], h[1], h[2], e[0], e[1], e[2], m->max_concentrations[0], m->max_concentrations[1]);
  } else {
    const auto& r = std::get<ReinhardStats>(fit);
    std::snprintf(text, sizeof text, "reinhard LAB mean (%.6f, %.6f, %.6f) std (%.6f, %.6f, %.6f)", r.mean[0], r.mean[1],
                  r.mean[2], r.std[0], r.std[1], r.std[2]);
  }
  return text;
}

}  // namespace histoflow::slides
