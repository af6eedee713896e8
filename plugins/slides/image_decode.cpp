#include "histoflow/slides/image_decode.hpp"

#include <vips/vips.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "histoflow/input_limits.hpp"

namespace histoflow::slides {
namespace {

struct ImageRef {
  VipsImage* image = nullptr;
  ~ImageRef() {
    if (image) g_object_unref(image);
  }
};

const std::set<std::string> kPatchImageLoaders = {"pngload", "jpegload", "tiffload", "webpload"};

std::string vips_reason() {
  std::string reason = vips_error_buffer();
  vips_error_clear();
  while (!reason.empty() && reason.back() == '\n') reason.pop_back();
  return reason;
}

}  // namespace

void ensure_vips() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("histoflow") != 0) throw std::runtime_error("cannot initialise libvips: " + vips_reason());
    vips_cache_set_max(0);  // images are decoded once; vips' operation cache would only hold memory
  });
}

RgbImage decode_rgb(const std::filesystem::path& file) {
  ensure_vips();
  // Patch images come in the formats tiling tools write. libvips' other loaders (PDF, SVG, FITS, MATLAB, OpenSlide,
  // ImageMagick, ...) would widen what a hostile patch folder can reach far beyond what a patch needs.
  const char* loader_class = vips_foreign_find_load(file.c_str());  // a class name: VipsForeignLoadPngFile
  if (!loader_class) throw std::runtime_error("cannot read image '" + file.string() + "': " + vips_reason());
  const char* nickname = vips_nickname_find(g_type_from_name(loader_class));
  const std::string loader = nickname ? nickname : loader_class;
  if (!kPatchImageLoaders.count(loader))
    throw std::runtime_error("cannot read image '" + file.string() + "': libvips reads it with " + loader +
                             "; patch images must be PNG, JPEG, TIFF or WebP");
  ImageRef in;
  in.image = vips_image_new_from_file(file.c_str(), "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  if (!in.image) throw std::runtime_error("cannot read image '" + file.string() + "': " + vips_reason());
  // The header alone is read so far: refuse a decompression bomb before any pixel is.
  check_input_limit(InputLimit::ImagePixels,
                    static_cast<std::uint64_t>(vips_image_get_width(in.image)) * static_cast<std::uint64_t>(vips_image_get_height(in.image)),
                    "image '" + file.string() + "'");
  ImageRef current;
  current.image = in.image;
  g_object_ref(current.image);
  const auto step = [&](int rc) {
    if (rc != 0) throw std::runtime_error("cannot decode image '" + file.string() + "': " + vips_reason());
  };
  if (vips_image_hasalpha(current.image)) {
    ImageRef flat;
    VipsArrayDouble* white = vips_array_double_newv(1, 255.0);
    const int rc = vips_flatten(current.image, &flat.image, "background", white, nullptr);
    vips_area_unref(VIPS_AREA(white));
    step(rc);
    std::swap(current.image, flat.image);
  }
  if (current.image->Type != VIPS_INTERPRETATION_sRGB || current.image->Bands != 3) {
    ImageRef srgb;
    step(vips_colourspace(current.image, &srgb.image, VIPS_INTERPRETATION_sRGB, nullptr));
    std::swap(current.image, srgb.image);
  }
  if (current.image->BandFmt != VIPS_FORMAT_UCHAR) {
    ImageRef cast;
    step(vips_cast_uchar(current.image, &cast.image, nullptr));
    std::swap(current.image, cast.image);
  }
  std::size_t size = 0;
  void* memory = vips_image_write_to_memory(current.image, &size);
  if (!memory) throw std::runtime_error("cannot decode image '" + file.string() + "': " + vips_reason());
  std::unique_ptr<void, decltype(&g_free)> owned(memory, &g_free);
  RgbImage out{vips_image_get_width(current.image), vips_image_get_height(current.image), {}};
  if (size != static_cast<std::size_t>(out.width) * out.height * 3)
    throw std::runtime_error("image '" + file.string() + "' did not decode to 3 bands of 8 bits");
  out.pixels.assign(static_cast<std::uint8_t*>(memory), static_cast<std::uint8_t*>(memory) + size);
  return out;
}

}  // namespace histoflow::slides
