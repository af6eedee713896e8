#include "slide_properties.hpp"

#include <openslide/openslide.h>

#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace histoflow::slides {
namespace {

std::optional<double> number_property(openslide_t* slide, const char* name) {
  const char* text = openslide_get_property_value(slide, name);
  if (!text) return std::nullopt;
  double value = 0;
  const std::string s(text);
  const auto result = std::from_chars(s.data(), s.data() + s.size(), value);
  if (result.ec != std::errc()) return std::nullopt;
  return value;
}

void check(openslide_t* slide, const std::filesystem::path& path) {
  if (const char* error = openslide_get_error(slide))
    throw std::runtime_error("OpenSlide error on '" + path.string() + "': " + error);
}

}  // namespace

SlideProperties read_slide_properties(openslide_t* slide, const std::filesystem::path& path) {
  check(slide, path);
  SlideProperties p;
  if (const char* vendor = openslide_get_property_value(slide, OPENSLIDE_PROPERTY_NAME_VENDOR)) p.vendor = vendor;
  const int32_t count = openslide_get_level_count(slide);
  check(slide, path);
  for (int32_t level = 0; level < count; ++level) {
    SlideLevel l;
    openslide_get_level_dimensions(slide, level, &l.width, &l.height);
    l.downsample = openslide_get_level_downsample(slide, level);
    p.levels.push_back(l);
  }
  check(slide, path);
  if (p.levels.empty() || p.levels[0].width <= 0 || p.levels[0].height <= 0)
    throw std::runtime_error("slide '" + path.string() + "' has no readable level");
  // The generic property first; then the vendor keys OpenSlide does not normalise.
  for (const auto& [x, y] : {std::pair{OPENSLIDE_PROPERTY_NAME_MPP_X, OPENSLIDE_PROPERTY_NAME_MPP_Y},
                             std::pair{"aperio.MPP", "aperio.MPP"}}) {
    p.mpp_x = number_property(slide, x);
    p.mpp_y = number_property(slide, y);
    if (p.mpp_x) {
      p.mpp_source = x;
      break;
    }
  }
  if (!p.mpp_x) {
    // TIFF resolution tags in pixels per centimetre (ResolutionUnit 3) or per inch (2).
    const auto xres = number_property(slide, "tiff.XResolution");
    const char* unit = openslide_get_property_value(slide, "tiff.ResolutionUnit");
    if (xres && *xres > 0 && unit) {
      const std::string u(unit);
      const double microns_per_unit = u == "centimeter" || u == "3" ? 1e4 : u == "inch" || u == "2" ? 25400.0 : 0.0;
      // Writers often leave default resolution tags (72 dpi, 1 pixel/mm): trusted only when plausible.
      const double mpp = microns_per_unit > 0 ? microns_per_unit / *xres : 0.0;
      if (mpp >= kMinPlausibleMpp && mpp <= kMaxPlausibleMpp) {
        p.mpp_x = mpp;
        const auto yres = number_property(slide, "tiff.YResolution");
        p.mpp_y = yres && *yres > 0 ? microns_per_unit / *yres : p.mpp_x;
        p.mpp_source = "tiff.XResolution";
      }
    }
  }
  if (p.mpp_x && !p.mpp_y) p.mpp_y = p.mpp_x;
  p.objective_power = number_property(slide, OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER);
  return p;
}

double resolve_mpp(const std::string& slide_id, std::optional<double> from_manifest, const SlideProperties& properties,
                   std::optional<double> assumed) {
  std::optional<double> mpp = from_manifest;
  std::string source = "the manifest";
  if (!mpp && properties.mpp_x) {
    mpp = properties.mpp_x;
    source = "the slide's " + properties.mpp_source;
  }
  if (!mpp && assumed) {
    mpp = assumed;
    source = "assume_mpp";
  }
  if (!mpp)
    throw std::runtime_error("slide '" + slide_id +
                             "' has no resolution (no mpp in the file): give it in the manifest's mpp column or set assume_mpp");
  if (!std::isfinite(*mpp) || *mpp < kMinPlausibleMpp || *mpp > kMaxPlausibleMpp) {
    std::ostringstream text;
    text << "slide '" << slide_id << "' has an implausible resolution of " << *mpp << " microns per pixel (from " << source
         << "; plausible: " << kMinPlausibleMpp << " to " << kMaxPlausibleMpp << ")";
    throw std::runtime_error(text.str());
  }
  return *mpp;
}

}  // namespace histoflow::slides
