#pragma once
// Stain normalisation of 8-bit RGB H&E pixels: what each method estimates from an image (its "fit") and how a
// fit of the source and a fit of the target turn source pixels into normalised ones. The stain_normalize stage
// fits the target on a reference image and the source on each tile or on a slide's tissue (docs/slides.md).
//
// - Macenko et al. 2009, "A method for normalizing histology slides for quantitative analysis": optical density
//   OD = -ln((I + 1) / Io); pixels with OD below beta in any channel are background; the plane of the two
//   largest eigenvectors of the remaining pixels' OD covariance; the alpha and 100 - alpha percentiles of the
//   pixels' angles in that plane are the two stain vectors, haematoxylin first (the one with the larger red
//   OD); per-pixel concentrations by least squares; their 99th percentiles are the maximal concentrations.
//   Normalised: Io * exp(-target_vectors * c * target_max / source_max).
// - Reinhard et al. 2001, "Color transfer between images": per-channel mean and standard deviation matching,
//   here in CIELAB (D65, from sRGB with its transfer curve, in floating point), statistics over the stained
//   pixels (the same OD test as Macenko's), applied to every pixel.
//
// Percentiles interpolate linearly between order statistics (numpy's default). tools/parity/
// make_stain_fixtures.py is an independent numpy implementation; tests/fixtures/stain holds its outputs.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace histoflow::slides {

enum class StainMethod { Macenko, Reinhard };

struct StainOptions {
  double light_intensity = 240;       // Io: the transmitted light of the optical density
  double beta = 0.15;                 // OD below this in any channel: background, left out of every fit
  double alpha = 1.0;                 // Macenko: angle percentiles alpha and 100 - alpha
  double min_stained_fraction = 0.05; // fewer stained pixels than this fraction (or than kMinStainedPixels): no fit
};

inline constexpr std::size_t kMinStainedPixels = 10;

struct MacenkoStains {
  std::array<std::array<double, 3>, 2> vectors{};  // unit OD vectors, haematoxylin then eosin
  std::array<double, 2> max_concentrations{};      // 99th percentiles of the concentrations
};

struct ReinhardStats {
  std::array<double, 3> mean{};  // CIELAB L*, a*, b*
  std::array<double, 3> std{};   // population standard deviations
};

using StainFit = std::variant<MacenkoStains, ReinhardStats>;

// A fit, or why there is none (too few stained pixels, degenerate colours).
struct StainFitResult {
  std::optional<StainFit> fit;
  std::string problem;
};

// Fits `method` on `pixels` RGB triplets (interleaved, 3 * pixels bytes): every pixel of the image it is fitted
// on (a tile, a reference image, or the tissue pixels of a slide thumbnail gathered together).
StainFitResult fit_stains(StainMethod method, const std::uint8_t* rgb, std::size_t pixels, const StainOptions& options);

// Normalises `pixels` RGB triplets from `in` to `out` (which may be `in`): `source` was fitted on the image the
// pixels come from (or its slide), `target` on the reference; both of the same method. Never NaN: every
// output is rounded and clamped to 0..255.
void apply_stains(const StainFit& source, const StainFit& target, const std::uint8_t* in, std::uint8_t* out,
                  std::size_t pixels, const StainOptions& options);

std::string describe(const StainFit& fit);  // one line, for messages and the lineage identity

// The methods one by one (macenko.cpp, reinhard.cpp).
StainFitResult fit_macenko(const std::uint8_t* rgb, std::size_t pixels, const StainOptions& options);
void apply_macenko(const MacenkoStains& source, const MacenkoStains& target, const std::uint8_t* in, std::uint8_t* out,
                   std::size_t pixels, const StainOptions& options);
StainFitResult fit_reinhard(const std::uint8_t* rgb, std::size_t pixels, const StainOptions& options);
void apply_reinhard(const ReinhardStats& source, const ReinhardStats& target, const std::uint8_t* in, std::uint8_t* out,
                    std::size_t pixels);

// Building blocks, exposed for the tests.
double percentile(std::vector<double> values, double percent);  // linear interpolation; values not empty
std::array<double, 3> optical_density(const std::uint8_t* rgb, double light_intensity);  // -ln((I + 1) / Io)
std::array<double, 256> optical_density_table(double light_intensity);  // the same, per 8-bit value
bool is_stained(const std::array<double, 3>& od, double beta);  // OD >= beta in every channel
std::size_t min_stained_pixels(std::size_t pixels, const StainOptions& options);  // what a fit needs
std::array<double, 3> srgb_to_lab(const std::uint8_t* rgb);
std::array<double, 3> lab_to_srgb(const std::array<double, 3>& lab);  // sRGB in 0..1, not clamped

}  // namespace histoflow::slides
