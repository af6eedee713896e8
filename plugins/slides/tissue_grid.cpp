#include "tissue_grid.hpp"

#include <cmath>
#include <sstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/slides/resample.hpp"
#include "histoflow/slides/slide_reader.hpp"
#include "mask_outputs.hpp"
#include "slide_properties.hpp"

namespace histoflow::slides {
namespace {

// The coarsest level whose downsample does not exceed `wanted`: reading there and shrinking loses nothing.
int finer_level_for(const SlideProperties& p, double wanted) {
  int best = 0;
  for (std::size_t l = 0; l < p.levels.size(); ++l)
    if (p.levels[l].downsample <= wanted * (1 + 1e-6)) best = static_cast<int>(l);
  return best;
}

RgbImage read_level(const SlideReader& slide, int level, const SlideLevel& dims, const std::string& slide_id) {
  try {
    return slide.read_region(0, 0, level, dims.width, dims.height);
  } catch (const SlideReadError& e) {
    throw std::runtime_error("slide '" + slide_id + "': cannot read level " + std::to_string(level) + " for the tissue mask: " + e.reason());
  }
}

// Fraction of the rectangle [x0, x1) x [y0, y1) (mask pixel units, fractional) covered by tissue.
double tissue_fraction(const Mask& mask, double x0, double y0, double x1, double y1) {
  double covered = 0;
  for (int y = std::max(0, static_cast<int>(y0)); y < std::min(mask.height, static_cast<int>(std::ceil(y1))); ++y) {
    const double wy = std::min<double>(y1, y + 1) - std::max<double>(y0, y);
    for (int x = std::max(0, static_cast<int>(x0)); x < std::min(mask.width, static_cast<int>(std::ceil(x1))); ++x)
      if (mask.at(x, y)) covered += wy * (std::min<double>(x1, x + 1) - std::max<double>(x0, x));
  }
  return covered / ((x1 - x0) * (y1 - y0));
}

}  // namespace

std::vector<ParamSpec> tiling_params() {
  return {param_float("mpp", 0.5, "Target microns per pixel of the tiles", 0.05, 16),
          param_float("magnification", 0, "Target magnification instead of mpp (e.g. 20); 0: use mpp", 0, 200),
          param_int("size", 224, "Tile edge in pixels at the target resolution", 16, 4096),
          param_int("overlap", 0, "Overlap of neighbouring tiles in target pixels", 0, 4095),
          param_int("stride", 0, "Step between tiles in target pixels; 0: size - overlap", 0, 8192),
          param_float("min_tissue", 0.5, "Minimum fraction of tissue in a kept tile", 0, 1),
          param_float("mask_mpp", 8, "Resolution of the tissue mask in microns per pixel", 1, 128),
          param_int("min_saturation", 20, "Saturation (0-255) below which nothing is tissue", 0, 255),
          param_int("morphology_radius", 2, "Radius of the closing/opening in mask pixels", 0, 32),
          param_float("min_piece_area", 20000, "Tissue pieces smaller than this (square microns) are dropped", 0, 1e12),
          param_bool("fill_holes", true, "Fill holes inside tissue pieces"),
          param_float("assume_mpp", 0, "Microns per pixel for slides that carry none; 0: such slides fail", 0, 16),
          not_affecting_output(param_bool("write_masks", false, "Write masks/<slide>.png (mask over thumbnail) and masks/<slide>.geojson (QuPath)")),
          not_affecting_output(param_bool("cache_grids", true, "Keep each slide's grid, keyed by the slide's fingerprint and these parameters: a rerun, another encoder or another sampling skips tissue detection")),
          not_affecting_output(param_path("cache", "Folder of cached grids; empty: <experiment output>/cache/tiling"))};
}

TissueGridder::TissueGridder(const Params& p, std::filesystem::path output_dir) : output_dir_(std::move(output_dir)) {
  cache_root_ = p.has("cache") && !p.get_string("cache").empty() ? std::filesystem::path(p.get_string("cache"))
                                                                : output_dir_ / "cache" / "tiling";
  cache_enabled_ = p.get_bool("cache_grids");
  mpp_ = p.get_float("mpp");
  magnification_ = p.get_float("magnification");
  size_ = p.get_int("size");
  const std::int64_t overlap = p.get_int("overlap"), stride = p.get_int("stride");
  if (overlap >= size_) throw std::invalid_argument("overlap must be smaller than size");
  if (overlap > 0 && stride > 0) throw std::invalid_argument("give overlap or stride, not both");
  stride_ = stride > 0 ? stride : size_ - overlap;
  min_tissue_ = p.get_float("min_tissue");
  mask_mpp_ = p.get_float("mask_mpp");
  min_piece_area_ = p.get_float("min_piece_area");
  mask_options_.min_saturation = static_cast<int>(p.get_int("min_saturation"));
  mask_options_.morphology_radius = static_cast<int>(p.get_int("morphology_radius"));
  mask_options_.fill_holes = p.get_bool("fill_holes");
  if (p.get_float("assume_mpp") > 0) assume_mpp_ = p.get_float("assume_mpp");
  write_masks_ = p.get_bool("write_masks");
}

TileReading tile_reading(const CachedGrid& grid) {
  const auto& a = grid.attributes;
  TileReading reading;
  reading.read_level = static_cast<std::int32_t>(std::get<std::int64_t>(a.at("read_level")));
  reading.extent = static_cast<std::int32_t>(std::lround(std::get<double>(a.at("extent_level0"))));
  for (const char* key : {"read_size", "tile_size", "mpp"}) reading.attributes[key] = a.at(key);
  return reading;
}

std::filesystem::path TissueGridder::mask_file(const std::string& id, const char* extension) const {
  return output_dir_ / "masks" / (id + extension);
}

CachedGrid TissueGridder::grid(const SlideToTile& slide, ErrorLog& errors, const std::string& stage_id) {
  const std::string& id = slide.id;
  std::filesystem::path cache_file;
  std::optional<CachedGrid> grid;
  // A cached grid skips tissue detection, and with it the masks: use it only when the masks asked for exist
  // (write_masks does not change the lineage, so it may be switched on for a rerun).
  const bool masks_missing = write_masks_ && !(std::filesystem::exists(mask_file(id, ".png")) &&
                                               std::filesystem::exists(mask_file(id, ".geojson")));
  if (cache_enabled_ && !slide.fingerprint.empty() && !cache_folder_.empty())
    cache_file = cache_folder_ / cache_file_name(id, slide.fingerprint, ".grid");
  if (!cache_file.empty() && !masks_missing) {
    try {
      grid = read_grid_cache(cache_file);
    } catch (const std::exception& e) {
      errors.add({stage_id, id, 0, std::string("recomputing the grid: ") + e.what()});
    }
  }
  if (grid) return *grid;
  CachedGrid computed = compute_grid(slide);
  if (!cache_file.empty()) {
    const std::string identity = "{\"slide_id\": \"" + id + "\", \"slide_fingerprint\": \"" + slide.fingerprint + "\", \"content\": \"tile_grid\"}";
    try {
      write_grid_cache(cache_file, computed, identity);
    } catch (const std::exception& e) {  // the run goes on; the next one tiles again
      errors.add({stage_id, id, 0, std::string("cannot cache the grid: ") + e.what()});
    }
  }
  return computed;
}

// Tissue detection and the grid: coordinates plus the tiling attributes (no manifest attributes).
CachedGrid TissueGridder::compute_grid(const SlideToTile& slide) {
  const std::string& id = slide.id;
  const SlideReader reader(slide.path.string());
  const SlideProperties props = reader.properties();
  const double slide_mpp = resolve_mpp(id, slide.path.string(), slide.mpp, props, assume_mpp_);
  double target_mpp = mpp_;
  if (magnification_ > 0)  // relative to the scan's objective when known, else the 10/magnification rule
    target_mpp = props.objective_power ? slide_mpp * *props.objective_power / magnification_ : 10.0 / magnification_;
  const double scale = target_mpp / slide_mpp;  // level-0 pixels per target pixel
  const SlideLevel& base = props.levels[0];

  // Tissue mask near mask_mpp, from the finest level that is not finer than needed. A level up to 1% coarser counts:
  // pyramid sizes are rounded (30,000 / 32 = 937.5 -> 937 gives downsample 32.0085), and taking the level below
  // instead read 4x the pixels: 100 MB more resident per 40,000 x 30,000 slide, the mask no better.
  const double mask_downsample = std::max(1.0, mask_mpp_ / slide_mpp);
  int mask_level = finer_level_for(props, mask_downsample * 1.01);
  while (mask_level + 1 < static_cast<int>(props.levels.size()) &&
         props.levels[mask_level].width * props.levels[mask_level].height > 64'000'000)
    ++mask_level;  // keep the read bounded on slides without a fine enough pyramid
  const RgbImage level_image = read_level(reader, mask_level, props.levels[mask_level], id);
  const int mask_w = std::max(1, static_cast<int>(std::lround(static_cast<double>(base.width) / mask_downsample)));
  const int mask_h = std::max(1, static_cast<int>(std::lround(static_cast<double>(base.height) / mask_downsample)));
  const RgbImage thumbnail =
      mask_w <= level_image.width ? resize_rgb(level_image, mask_w, mask_h) : level_image;
  const double mask_scale = static_cast<double>(base.width) / thumbnail.width;  // level-0 pixels per mask pixel
  TissueMaskOptions options = mask_options_;
  options.min_piece_pixels = static_cast<std::int64_t>(min_piece_area_ / (mask_scale * slide_mpp * mask_scale * slide_mpp));
  const TissueMaskResult mask = tissue_mask(thumbnail, options);
  if (write_masks_) {
    write_mask_png(mask_file(id, ".png"), thumbnail, mask.mask);
    write_file_atomically(mask_file(id, ".geojson"), tissue_geojson(mask.mask, mask_scale, id));
    ++masks_written_;
  }

  // The grid: full tiles only, row-major from the top-left corner.
  const double extent = static_cast<double>(size_) * scale, step = static_cast<double>(stride_) * scale;
  const int read_level = finer_level_for(props, scale);
  const double read_downsample = props.levels[read_level].downsample;
  const auto read_size = std::max<std::int64_t>(1, std::llround(extent / read_downsample));
  std::vector<std::int64_t> coords;
  std::int64_t candidates = 0;
  for (std::int64_t row = 0;; ++row) {
    const double y = static_cast<double>(row) * step;
    if (y + extent > static_cast<double>(base.height) + 1e-6) break;
    for (std::int64_t col = 0;; ++col) {
      const double x = static_cast<double>(col) * step;
      if (x + extent > static_cast<double>(base.width) + 1e-6) break;
      ++candidates;
      const double fraction =
          tissue_fraction(mask.mask, x / mask_scale, y / mask_scale, (x + extent) / mask_scale, (y + extent) / mask_scale);
      if (fraction >= min_tissue_) {
        coords.push_back(std::llround(x));
        coords.push_back(std::llround(y));
      }
    }
  }
  const auto tiles = static_cast<std::int64_t>(coords.size() / 2);
  if (tiles == 0) {
    std::ostringstream text;
    text << "slide '" << id << "': no tissue tile (" << candidates << " grid positions at " << target_mpp
         << " mpp, none with tissue fraction >= " << min_tissue_ << "; mask threshold " << mask.threshold << ")";
    throw std::runtime_error(text.str());
  }

  CachedGrid grid;
  grid.coords = std::move(coords);
  grid.attributes["tiles"] = tiles;
  grid.attributes["read_size"] = read_size;
  grid.attributes["tile_size"] = size_;
  grid.attributes["stride"] = stride_;
  grid.attributes["mpp"] = target_mpp;
  grid.attributes["slide_mpp"] = slide_mpp;
  grid.attributes["extent_level0"] = extent;
  grid.attributes["read_level"] = std::int64_t{read_level};
  grid.attributes["read_downsample"] = read_downsample;
  grid.attributes["min_tissue"] = min_tissue_;
  grid.attributes["mask_threshold"] = std::int64_t{mask.threshold};
  grid.attributes["vendor"] = props.vendor;
  // The slide's own metadata, as OpenSlide reports it, so every grid file says what it was cut from.
  std::string levels;
  for (const auto& l : props.levels)
    levels += (levels.empty() ? "" : "; ") + std::to_string(l.width) + "x" + std::to_string(l.height) + " @" + std::to_string(l.downsample);
  grid.attributes["levels"] = levels;
  grid.attributes["mpp_source"] = slide.mpp ? std::string("manifest") : props.mpp_x ? props.mpp_source : std::string("assume_mpp");
  if (props.objective_power) grid.attributes["objective_power"] = *props.objective_power;
  return grid;
}

}  // namespace histoflow::slides
