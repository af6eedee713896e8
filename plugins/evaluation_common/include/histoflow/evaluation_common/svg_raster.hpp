#pragma once
// A figure drawn by histoflow/svg_plot.hpp, rasterised to RGB at its own pixel size (librsvg and cairo, text in
// the system's DejaVu Sans): the PNG files the stages write are the report's drawings, not a second renderer.
#include <filesystem>
#include <string_view>

#include "histoflow/image.hpp"

namespace histoflow::evaluation_common {

// Throws std::runtime_error when librsvg cannot parse the SVG or it has no size.
RgbImage rasterise_svg(std::string_view svg);

// rasterise_svg, written as a zlib-compressed PNG, atomically.
void write_svg_as_png(const std::filesystem::path& file, std::string_view svg);

}  // namespace histoflow::evaluation_common
