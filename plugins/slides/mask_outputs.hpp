#pragma once
// Per-slide tiling outputs a pathologist can look at: the mask as PNG and the tissue contours as GeoJSON
// (level-0 coordinates) that QuPath imports as annotations.
#include <filesystem>
#include <string>

#include "histoflow/slides/image.hpp"

namespace histoflow::slides {

void write_mask_png(const std::filesystem::path& file, const RgbImage& thumbnail, const Mask& mask);
// `scale` maps mask pixels to level-0 pixels.
std::string tissue_geojson(const Mask& mask, double scale, const std::string& slide_id);

}  // namespace histoflow::slides
