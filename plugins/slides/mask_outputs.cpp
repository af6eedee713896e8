#include "mask_outputs.hpp"

#include <nlohmann/json.hpp>

#include "histoflow/png.hpp"
#include "tissue_mask.hpp"

namespace histoflow::slides {

void write_mask_png(const std::filesystem::path& file, const RgbImage& thumbnail, const Mask& mask) {
  // The thumbnail with tissue tinted green and background dimmed: what was kept is visible at a glance.
  RgbImage out = thumbnail;
  for (int y = 0; y < mask.height; ++y)
    for (int x = 0; x < mask.width; ++x) {
      std::uint8_t* p = out.at(x, y);
      if (mask.at(x, y)) {
        p[1] = static_cast<std::uint8_t>((p[1] + 255) / 2);
      } else {
        for (int c = 0; c < 3; ++c) p[c] = static_cast<std::uint8_t>(p[c] / 2);
      }
    }
  write_png(file, out, 6);  // zlib level 6: thumbnails are large
}

std::string tissue_geojson(const Mask& mask, double scale, const std::string& slide_id) {
  nlohmann::json features = nlohmann::json::array();
  int index = 0;
  for (const auto& ring : trace_contours(mask)) {
    nlohmann::json coordinates = nlohmann::json::array();
    for (const auto& [x, y] : ring) coordinates.push_back({x * scale, y * scale});
    features.push_back({{"type", "Feature"},
                        {"id", slide_id + "-tissue-" + std::to_string(index++)},
                        {"geometry", {{"type", "Polygon"}, {"coordinates", {coordinates}}}},
                        {"properties",
                         {{"objectType", "annotation"},
                          {"classification", {{"name", "Tissue"}, {"color", {40, 180, 60}}}}}}});
  }
  return nlohmann::json{{"type", "FeatureCollection"}, {"features", features}}.dump() + "\n";
}

}  // namespace histoflow::slides
