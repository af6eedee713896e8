// What a patch folder or a manifest from someone else cannot do: make libvips open an arbitrary format, decode a
// decompression bomb, or list more rows than the limit (docs/limits.md).
#include <catch2/catch.hpp>

#include <fstream>

#include "histoflow/input_limits.hpp"
#include "histoflow/slides/image_decode.hpp"
#include "histoflow/slides/manifest.hpp"
#include "support/fresh_folder.hpp"

using namespace histoflow;
using namespace histoflow::slides;

namespace {

const std::filesystem::path kImageSeeds = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests/fuzz/seeds/image";


}  // namespace

TEST_CASE("patch images decode from PNG, JPEG, TIFF and WebP only", "[hostile]") {
  for (const char* name : {"patch.png", "patch.jpg", "patch.tif", "patch.webp"}) {
    INFO(name);
    const RgbImage image = decode_rgb(kImageSeeds / name);
    CHECK(image.width == 16);
    CHECK(image.height == 12);
  }
  const auto ppm = testing::fresh_folder("hostile_images") / "patch.ppm";
  std::ofstream(ppm, std::ios::binary) << "P6\n2 2\n255\n" << std::string(12, '\x80');
  CHECK_THROWS_WITH(decode_rgb(ppm), "cannot read image '" + ppm.string() +
                                         "': libvips reads it with ppmload; patch images must be PNG, JPEG, TIFF or WebP");
}

TEST_CASE("an image over the pixel limit is refused from its header", "[hostile]") {
  ScopedInputLimit lowered(InputLimit::ImagePixels, 100);
  CHECK_THROWS_WITH(decode_rgb(kImageSeeds / "patch.png"),
                    Catch::Contains("192 pixels of one decoded image exceed the limit image_pixels = 100") &&
                        Catch::Contains("HISTOFLOW_LIMIT_IMAGE_PIXELS"));
}

TEST_CASE("a manifest with more rows than the limit is refused before its rows are checked", "[hostile]") {
  const auto file = testing::fresh_folder("hostile_manifest") / "manifest.csv";
  std::ofstream(file) << "slide,patient,label\na.svs,p,0\nb.svs,p,1\nc.svs,p,0\n";
  ScopedInputLimit lowered(InputLimit::ManifestRows, 2);
  ManifestOptions options;
  options.require_slide_files = false;
  options.id_column.clear();
  CHECK_THROWS_WITH(load_manifest(file, options), Catch::Contains("3 rows of a manifest exceed the limit manifest_rows = 2"));
}
