#include "tiff_io.hpp"

#include <tiffio.h>
#include <vips/vips.h>

#include <cstdio>
#include <stdexcept>

#include "synth_common.hpp"

namespace synth {
namespace {

std::string take_vips_error(const std::string& what) {
  std::string msg = what + ": " + vips_error_buffer();
  vips_error_clear();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

// Owns a VipsImage reference.
struct VipsRef {
  VipsImage* im = nullptr;
  VipsRef() = default;
  VipsRef(const VipsRef&) = delete;
  VipsRef& operator=(const VipsRef&) = delete;
  ~VipsRef() {
    if (im) g_object_unref(im);
  }
};

// Wraps an RGB buffer (not copied; it must outlive the saves) as an sRGB image.
void wrap_rgb(VipsRef& out, const uint8_t* rgb, int width, int height, std::optional<double> res) {
  VipsRef mem;
  mem.im = vips_image_new_from_memory(rgb, size_t(width) * height * 3, width, height, 3, VIPS_FORMAT_UCHAR);
  if (!mem.im) throw std::runtime_error(take_vips_error("vips_image_new_from_memory"));
  const double r = res.value_or(1.0);
  if (vips_copy(mem.im, &out.im, "interpretation", VIPS_INTERPRETATION_sRGB, "xres", r, "yres", r, nullptr))
    throw std::runtime_error(take_vips_error("vips_copy"));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void save_pyramid_tiff(const std::string& path, const uint8_t* rgb, int width, int height,
                       const std::string& description, std::optional<double> resolution_px_per_mm, int quality,
                       int tile_size) {
  VipsRef im;
  wrap_rgb(im, rgb, width, height, resolution_px_per_mm);
  vips_image_set_string(im.im, "image-description", description.c_str());
  if (vips_tiffsave(im.im, path.c_str(), "tile", TRUE, "tile_width", tile_size, "tile_height", tile_size, "pyramid",
                    TRUE, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_JPEG, "Q", quality, "resunit",
                    VIPS_FOREIGN_TIFF_RESUNIT_CM, nullptr))
    throw std::runtime_error(take_vips_error("writing " + path));
}

void clear_resolution_unit(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  if (!f) throw std::runtime_error("cannot open " + path);
  bool big_endian = false;
  auto fail = [&](const std::string& why) {
    std::fclose(f);
    throw std::runtime_error(path + ": " + why);
  };
  auto read_uint = [&](uint64_t offset, int bytes) -> uint64_t {
    uint8_t b[8] = {};
    if (std::fseek(f, long(offset), SEEK_SET) != 0 || std::fread(b, 1, size_t(bytes), f) != size_t(bytes))
      fail("truncated TIFF structure");
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(b[big_endian ? bytes - 1 - i : i]) << (8 * i);
    return v;
  };
  char order[2] = {};
  if (std::fread(order, 1, 2, f) != 2 || (order[0] != order[1]) || (order[0] != 'I' && order[0] != 'M'))
    fail("not a TIFF file");
  big_endian = order[0] == 'M';
  const uint64_t version = read_uint(2, 2);
  if (version != 42 && version != 43) fail("not a TIFF file");
  const bool big = version == 43;
  uint64_t ifd = big ? read_uint(8, 8) : read_uint(4, 4);
  for (int guard = 0; ifd != 0 && guard < 256; ++guard) {
    const uint64_t count = big ? read_uint(ifd, 8) : read_uint(ifd, 2);
    const uint64_t first = ifd + (big ? 8 : 2), entry_size = big ? 20 : 12;
    for (uint64_t k = 0; k < count; ++k) {
      const uint64_t e = first + k * entry_size;
      if (read_uint(e, 2) != TIFFTAG_RESOLUTIONUNIT || read_uint(e + 2, 2) != TIFF_SHORT) continue;
      const uint64_t value_at = e + (big ? 12 : 8);
      const uint8_t none[2] = {uint8_t(big_endian ? 0 : RESUNIT_NONE), uint8_t(big_endian ? RESUNIT_NONE : 0)};
      if (std::fseek(f, long(value_at), SEEK_SET) != 0 || std::fwrite(none, 1, 2, f) != 2) fail("cannot write");
    }
    ifd = big ? read_uint(first + count * entry_size, 8) : read_uint(first + count * entry_size, 4);
  }
  if (std::fclose(f) != 0) throw std::runtime_error("cannot write " + path);
}

void save_image(const std::string& path, const uint8_t* rgb, int width, int height) {
  VipsRef im;
  wrap_rgb(im, rgb, width, height, 2.0);  // 0.5 um/px
  int rc = 0;
  if (ends_with(path, ".png"))
    rc = vips_pngsave(im.im, path.c_str(), nullptr);
  else if (ends_with(path, ".jpg") || ends_with(path, ".jpeg"))
    rc = vips_jpegsave(im.im, path.c_str(), "Q", 90, nullptr);
  else if (ends_with(path, ".tif") || ends_with(path, ".tiff"))
    rc = vips_tiffsave(im.im, path.c_str(), "compression", VIPS_FOREIGN_TIFF_COMPRESSION_NONE, nullptr);
  else
    throw std::invalid_argument("unsupported image extension: " + path);
  if (rc) throw std::runtime_error(take_vips_error("writing " + path));
}

std::vector<std::pair<int, int>> tiff_levels(const std::string& path) {
  TIFF* t = TIFFOpen(path.c_str(), "r");
  if (!t) throw std::runtime_error("libtiff cannot open " + path);
  std::vector<std::pair<int, int>> levels;
  do {
    uint32_t w = 0, h = 0;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    levels.emplace_back(int(w), int(h));
  } while (TIFFReadDirectory(t));
  TIFFClose(t);
  return levels;
}

CorruptedTile corrupt_tile(const std::string& path, uint32_t x, uint32_t y, uint64_t seed) {
  TIFF* t = TIFFOpen(path.c_str(), "r");
  if (!t) throw std::runtime_error("libtiff cannot open " + path);
  CorruptedTile c;
  uint32_t width = 0, height = 0;
  uint64_t* offsets = nullptr;
  uint64_t* counts = nullptr;
  const bool ok = TIFFSetDirectory(t, 0) && TIFFIsTiled(t) && TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width) &&
                  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &height) && TIFFGetField(t, TIFFTAG_TILEWIDTH, &c.tile_width) &&
                  TIFFGetField(t, TIFFTAG_TILELENGTH, &c.tile_height) &&
                  TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets) && TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &counts);
  if (!ok || x >= width || y >= height || !c.tile_width || !c.tile_height) {
    TIFFClose(t);
    throw std::runtime_error("cannot locate tile (" + std::to_string(x) + "," + std::to_string(y) + ") in " + path);
  }
  c.index = TIFFComputeTile(t, x, y, 0, 0);
  c.col = x / c.tile_width;
  c.row = y / c.tile_height;
  c.x = c.col * c.tile_width;
  c.y = c.row * c.tile_height;
  c.offset = offsets[c.index];
  c.byte_count = counts[c.index];
  TIFFClose(t);
  if (c.byte_count < 16) throw std::runtime_error("tile too small to corrupt in " + path);

  // Not a JPEG stream: it starts with text, never with the 0xFFD8 start-of-image marker, and holds no 0xFF.
  std::vector<uint8_t> garbage(c.byte_count);
  Rng r(seed);
  const char tag[] = "CORRUPTED-TILE!";
  for (size_t i = 0; i < garbage.size(); ++i)
    garbage[i] = i < sizeof(tag) - 1 ? uint8_t(tag[i]) : uint8_t(r.next() % 255);
  FILE* f = std::fopen(path.c_str(), "r+b");
  if (!f) throw std::runtime_error("cannot open " + path + " for writing");
  const bool written = std::fseek(f, long(c.offset), SEEK_SET) == 0 &&
                       std::fwrite(garbage.data(), 1, garbage.size(), f) == garbage.size();
  if (std::fclose(f) != 0 || !written) throw std::runtime_error("cannot overwrite tile in " + path);
  return c;
}

}  // namespace synth
