#pragma once
// What a slide file says about itself: vendor, pyramid levels, resolution and magnification.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

typedef struct _openslide openslide_t;

namespace histoflow::slides {

struct SlideLevel {
  std::int64_t width = 0;
  std::int64_t height = 0;
  double downsample = 1.0;
};

struct SlideProperties {
  std::string vendor;
  std::vector<SlideLevel> levels;
  std::optional<double> mpp_x;  // microns per pixel at level 0
  std::optional<double> mpp_y;
  std::string mpp_source;       // the property it came from
  std::optional<double> objective_power;
};

// Reads the properties of an open slide; throws with the slide's path when OpenSlide reports an error.
SlideProperties read_slide_properties(openslide_t* slide, const std::filesystem::path& path);

// Microns per pixel that a tissue slide can plausibly have (from 100x oil objectives to coarse 1.25x scans).
inline constexpr double kMinPlausibleMpp = 0.05;
inline constexpr double kMaxPlausibleMpp = 16.0;

// The mpp to use: manifest first, then the slide's own, then an assumed value; throws with the slide id
// when none is available or the value is absurd.
double resolve_mpp(const std::string& slide_id, std::optional<double> from_manifest, const SlideProperties& properties,
                   std::optional<double> assumed);

}  // namespace histoflow::slides
