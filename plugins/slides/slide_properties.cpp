#include "slide_properties.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace histoflow::slides {

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
