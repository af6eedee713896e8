// Writing images with libvips and inspecting / damaging TIFFs with libtiff.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace synth {

// Pyramidal tiled JPEG TIFF that OpenSlide reads as an Aperio slide: level 0 first, each further level
// downsampled by 2, 256x256 tiles, `description` as ImageDescription of the first IFD.
// resolution_px_per_mm sets the TIFF resolution tags (vips' default, 1 px/mm, when absent).
void save_pyramid_tiff(const std::string& path, const uint8_t* rgb, int width, int height,
                       const std::string& description, std::optional<double> resolution_px_per_mm, int quality,
                       int tile_size);

// Sets ResolutionUnit to 1 (no absolute unit) in every IFD, in place: for slides that must carry no physical
// resolution at all (libvips always writes resolution tags, in centimetres or inches).
void clear_resolution_unit(const std::string& path);

// RGB image in the format given by the extension: .png, .jpg/.jpeg (Q 90) or .tif/.tiff (uncompressed).
void save_image(const std::string& path, const uint8_t* rgb, int width, int height);

// Width and height of every IFD, in order.
std::vector<std::pair<int, int>> tiff_levels(const std::string& path);

struct CorruptedTile {
  uint32_t index = 0;  // tile index in IFD 0 (row-major)
  uint32_t col = 0, row = 0;
  uint32_t x = 0, y = 0;  // level-0 pixel position of the tile's top-left corner
  uint32_t tile_width = 0, tile_height = 0;
  uint64_t offset = 0, byte_count = 0;
};

// Overwrites the compressed bytes of the IFD-0 tile holding pixel (x, y) with seeded garbage.
CorruptedTile corrupt_tile(const std::string& path, uint32_t x, uint32_t y, uint64_t seed);

}  // namespace synth
