#include "histoflow/evaluation_common/svg_raster.hpp"

#include <cairo.h>
#include <librsvg/rsvg.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "histoflow/png.hpp"

namespace histoflow::evaluation_common {

RgbImage rasterise_svg(std::string_view svg) {
  GError* error = nullptr;
  std::unique_ptr<RsvgHandle, decltype(&g_object_unref)> handle(
      rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &error), &g_object_unref);
  if (!handle) {
    const std::string message = error ? error->message : "unknown error";
    if (error) g_error_free(error);
    throw std::runtime_error("cannot parse an SVG figure: " + message);
  }
  gdouble width = 0, height = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(handle.get(), &width, &height) || width < 1 || height < 1)
    throw std::runtime_error("an SVG figure without a pixel size");
  const int w = static_cast<int>(std::ceil(width)), h = static_cast<int>(std::ceil(height));
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h), &cairo_surface_destroy);
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS)  // e.g. a side over cairo's 32767 pixels
    throw std::runtime_error("cannot make a " + std::to_string(w) + " x " + std::to_string(h) + " pixel image for an SVG figure: " +
                             cairo_status_to_string(cairo_surface_status(surface.get())));
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cairo(cairo_create(surface.get()), &cairo_destroy);
  cairo_set_source_rgb(cairo.get(), 1, 1, 1);
  cairo_paint(cairo.get());
  const RsvgRectangle viewport{0, 0, width, height};
  if (!rsvg_handle_render_document(handle.get(), cairo.get(), &viewport, &error)) {
    const std::string message = error ? error->message : "unknown error";
    if (error) g_error_free(error);
    throw std::runtime_error("cannot render an SVG figure: " + message);
  }
  cairo_surface_flush(surface.get());
  RgbImage image{w, h, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * 3)};
  const unsigned char* data = cairo_image_surface_get_data(surface.get());
  const int stride = cairo_image_surface_get_stride(surface.get());
  for (int y = 0; y < h; ++y) {
    const auto* row = reinterpret_cast<const std::uint32_t*>(data + static_cast<std::ptrdiff_t>(y) * stride);
    for (int x = 0; x < w; ++x) {  // CAIRO_FORMAT_RGB24: 0x00RRGGBB in native byte order
      std::uint8_t* p = image.at(x, y);
      p[0] = static_cast<std::uint8_t>(row[x] >> 16), p[1] = static_cast<std::uint8_t>(row[x] >> 8), p[2] = static_cast<std::uint8_t>(row[x]);
    }
  }
  return image;
}

void write_svg_as_png(const std::filesystem::path& file, std::string_view svg) { write_png(file, rasterise_svg(svg), 6); }

}  // namespace histoflow::evaluation_common
