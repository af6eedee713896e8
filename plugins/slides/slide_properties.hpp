#pragma once
// The resolution a slide is tiled at: the properties themselves come from SlideReader::properties().
#include <optional>
#include <string>

#include "histoflow/slides/slide_reader.hpp"

namespace histoflow::slides {

// Microns per pixel that a tissue slide can plausibly have (from 100x oil objectives to coarse 1.25x scans).
inline constexpr double kMinPlausibleMpp = 0.05;
inline constexpr double kMaxPlausibleMpp = 16.0;

// Pixels are square when the slide's mpp-x and mpp-y differ by at most this fraction (rounding in the file).
inline constexpr double kMaxPixelAspectDeviation = 0.01;

// The mpp to use: manifest first, then the slide's own, then an assumed value; throws with the slide id
// when none is available or the value is absurd. The slide's own resolution must be square: a slide whose
// mpp-x and mpp-y differ by more than kMaxPixelAspectDeviation is refused, naming `path` and both values
// (tiles are square in pixels, so they would be stretched). A manifest mpp is taken as given, square.
double resolve_mpp(const std::string& slide_id, const std::string& path, std::optional<double> from_manifest,
                   const SlideProperties& properties, std::optional<double> assumed);

}  // namespace histoflow::slides
