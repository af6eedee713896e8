#include "slide_properties.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace histoflow::slides {

namespace {

void require_square_pixels(const std::string& slide_id, const std::string& path, const SlideProperties& properties) {
  const double x = *properties.mpp_x, y = properties.mpp_y.value_or(x);
  if (!(x > 0 && y > 0)) return;  // absurd values are refused as implausible, with their source
  const double deviation = std::abs(x - y) / std::min(x, y);
  if (deviation <= kMaxPixelAspectDeviation) return;
  std::ostringstream text;
  text << "slide '" << slide_id << "' ('" << path << "') has non-square pixels: mpp-x " << x << " and mpp-y " << y
       << " microns (from " << properties.mpp_source << ") differ by " << std::setprecision(3) << 100 * deviation
       << "%, more than " << 100 * kMaxPixelAspectDeviation
       << "%; square tiles would be stretched, so the slide is not tiled (if the file's values are wrong, give the "
          "slide's mpp in the manifest's mpp column)";
  throw std::runtime_error(text.str());
}

}  // namespace

double resolve_mpp(const std::string& slide_id, const std::string& path, std::optional<double> from_manifest,
                   const SlideProperties& properties, std::optional<double> assumed) {
  std::optional<double> mpp = from_manifest;
  std::string source = "the manifest";
  if (!mpp && properties.mpp_x) {
    require_square_pixels(slide_id, path, properties);
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
