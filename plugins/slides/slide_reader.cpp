// The slide reading API (include/histoflow/slides/slide_reader.hpp) over OpenSlide and the handle pool.
#include "histoflow/slides/slide_reader.hpp"

#include <openslide/openslide.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "argb.hpp"
#include "histoflow/slides/resample.hpp"
#include "openslide_pool.hpp"
#include "slide_properties.hpp"

namespace histoflow::slides {
namespace {

std::optional<double> number_property(openslide_t* slide, const char* name) {
  const char* text = openslide_get_property_value(slide, name);
  if (!text) return std::nullopt;
  double value = 0;
  const std::string s(text);
  const auto result = std::from_chars(s.data(), s.data() + s.size(), value);
  if (result.ec != std::errc()) return std::nullopt;
  return value;
}

void check(openslide_t* slide, const std::filesystem::path& path) {
  if (const char* error = openslide_get_error(slide))
    throw std::runtime_error("OpenSlide error on '" + path.string() + "': " + error);
}

// Regions up to this many pixels are read through a buffer each thread keeps (tiles); larger ones (whole
// levels) through one of their own, so that no thread holds on to a level's worth of memory.
constexpr std::size_t kReusedBufferPixels = std::size_t{1} << 22;

}  // namespace

void argb_over_white_to_rgb(const std::uint32_t* argb, std::size_t count, std::uint8_t* rgb) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t p = argb[i];
    const std::uint32_t a = p >> 24;
    // Premultiplied: colour over white is colour + (255 - alpha) * white.
    const std::uint32_t blank = 255 - a;
    rgb[i * 3 + 0] = static_cast<std::uint8_t>(std::min<std::uint32_t>(255, ((p >> 16) & 0xff) + blank));
    rgb[i * 3 + 1] = static_cast<std::uint8_t>(std::min<std::uint32_t>(255, ((p >> 8) & 0xff) + blank));
    rgb[i * 3 + 2] = static_cast<std::uint8_t>(std::min<std::uint32_t>(255, (p & 0xff) + blank));
  }
}

SlideReadError::SlideReadError(const std::filesystem::path& path, const std::string& reason)
    : std::runtime_error("cannot read '" + path.string() + "': " + reason), reason_(reason) {}

SlideReadError::~SlideReadError() = default;

struct SlideReader::Lease {
  SlidePool::Lease handle;
};

SlideReader::SlideReader(const std::filesystem::path& path) : lease_(new Lease{SlidePool::shared().acquire(path)}) {}
SlideReader::SlideReader(const std::filesystem::path& path, Unshared) : lease_(new Lease{SlidePool::shared().acquire_unshared(path)}) {}
SlideReader::SlideReader(SlideReader&&) noexcept = default;
SlideReader::~SlideReader() = default;

void SlideReader::close_when_idle(const std::filesystem::path& path) { SlidePool::shared().close_when_idle(path); }

const std::filesystem::path& SlideReader::path() const { return lease_->handle.path(); }

SlideProperties SlideReader::properties() const {
  openslide_t* slide = lease_->handle.get();
  const std::filesystem::path& path = this->path();
  check(slide, path);
  SlideProperties p;
  if (const char* vendor = openslide_get_property_value(slide, OPENSLIDE_PROPERTY_NAME_VENDOR)) p.vendor = vendor;
  const int32_t count = openslide_get_level_count(slide);
  check(slide, path);
  for (int32_t level = 0; level < count; ++level) {
    SlideLevel l;
    openslide_get_level_dimensions(slide, level, &l.width, &l.height);
    l.downsample = openslide_get_level_downsample(slide, level);
    p.levels.push_back(l);
  }
  check(slide, path);
  if (p.levels.empty() || p.levels[0].width <= 0 || p.levels[0].height <= 0)
    throw std::runtime_error("slide '" + path.string() + "' has no readable level");
  // The generic property first; then the vendor keys OpenSlide does not normalise.
  for (const auto& [x, y] : {std::pair{OPENSLIDE_PROPERTY_NAME_MPP_X, OPENSLIDE_PROPERTY_NAME_MPP_Y},
                             std::pair{"aperio.MPP", "aperio.MPP"}}) {
    p.mpp_x = number_property(slide, x);
    p.mpp_y = number_property(slide, y);
    if (p.mpp_x) {
      p.mpp_source = x;
      break;
    }
  }
  if (!p.mpp_x) {
    // TIFF resolution tags in pixels per centimetre (ResolutionUnit 3) or per inch (2).
    const auto xres = number_property(slide, "tiff.XResolution");
    const char* unit = openslide_get_property_value(slide, "tiff.ResolutionUnit");
    if (xres && *xres > 0 && unit) {
      const std::string u(unit);
      const double microns_per_unit = u == "centimeter" || u == "3" ? 1e4 : u == "inch" || u == "2" ? 25400.0 : 0.0;
      // Writers often leave default resolution tags (72 dpi, 1 pixel/mm): trusted only when plausible.
      const double mpp = microns_per_unit > 0 ? microns_per_unit / *xres : 0.0;
      if (mpp >= kMinPlausibleMpp && mpp <= kMaxPlausibleMpp) {
        p.mpp_x = mpp;
        const auto yres = number_property(slide, "tiff.YResolution");
        p.mpp_y = yres && *yres > 0 ? microns_per_unit / *yres : p.mpp_x;
        p.mpp_source = "tiff.XResolution";
      }
    }
  }
  if (p.mpp_x && !p.mpp_y) p.mpp_y = p.mpp_x;
  p.objective_power = number_property(slide, OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER);
  return p;
}

int SlideReader::best_level_for_downsample(double downsample) const {
  return openslide_get_best_level_for_downsample(lease_->handle.get(), downsample);
}

void SlideReader::read_region(std::int64_t x, std::int64_t y, int level, std::int64_t width, std::int64_t height,
                              std::uint8_t* rgb) const {
  const auto pixels = static_cast<std::size_t>(width * height);
  thread_local std::vector<std::uint32_t> reused;
  std::vector<std::uint32_t> own;
  std::vector<std::uint32_t>& argb = pixels <= kReusedBufferPixels ? reused : own;
  argb.resize(pixels);
  openslide_t* slide = lease_->handle.get();
  openslide_read_region(slide, argb.data(), x, y, level, width, height);
  if (const char* error = openslide_get_error(slide)) throw SlideReadError(path(), error);
  argb_over_white_to_rgb(argb.data(), pixels, rgb);
}

RgbImage SlideReader::read_region(std::int64_t x, std::int64_t y, int level, std::int64_t width, std::int64_t height) const {
  RgbImage image{static_cast<int>(width), static_cast<int>(height), std::vector<std::uint8_t>(static_cast<std::size_t>(width * height) * 3)};
  read_region(x, y, level, width, height, image.pixels.data());
  return image;
}

RgbImage SlideReader::thumbnail(int max_width) const {
  const SlideProperties p = properties();
  const std::int64_t width = p.levels[0].width, height = p.levels[0].height;
  int level = 0;
  for (int l = static_cast<int>(p.levels.size()) - 1; l >= 0; --l)
    if (p.levels[l].width >= max_width || l == 0) {
      level = l;
      break;
    }
  const std::int64_t level_w = p.levels[level].width, level_h = p.levels[level].height;
  const RgbImage full = read_region(0, 0, level, level_w, level_h);
  const int thumb_w = static_cast<int>(std::min<std::int64_t>(max_width, level_w));
  const int thumb_h = std::max(1, static_cast<int>(std::lround(static_cast<double>(thumb_w) * height / width)));
  return resize_rgb(full, thumb_w, thumb_h);
}

}  // namespace histoflow::slides
