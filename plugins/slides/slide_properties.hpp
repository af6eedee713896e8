#pragma once
// The resolution a slide is tiled at: the properties themselves come from SlideReader::properties().
#include <optional>
#include <string>

#include "histoflow/slides/slide_reader.hpp"

namespace histoflow::slides {

// Microns per pixel that a tissue slide can plausibly have (from 100x oil objectives to coarse 1.25x scans).
inline constexpr double kMinPlausibleMpp = 0.05;
inline constexpr double kMaxPlausibleMpp = 16.0;

// The mpp to use: manifest first, then the slide's own, then an assumed value; throws with the slide id
// when none is available or the value is absurd.
double resolve_mpp(const std::string& slide_id, std::optional<double> from_manifest, const SlideProperties& properties,
                   std::optional<double> assumed);

}  // namespace histoflow::slides
