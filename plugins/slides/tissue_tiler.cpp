// Tissue detection and tiling: a mask at low resolution, then a grid at the target resolution whose
// tiles keep enough tissue. Emits where to read each tile (read level, read size) and the slide's grid.
#include <atomic>
#include <cmath>
#include <sstream>

#include "grid_cache.hpp"
#include "histoflow/atomic_file.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/slides/resample.hpp"
#include "histoflow/slides/slide_reader.hpp"
#include "histoflow/stage.hpp"
#include "mask_outputs.hpp"
#include "slide_properties.hpp"
#include "slide_stages.hpp"
#include "tissue_mask.hpp"

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

class TissueTiler final : public Stage {
 public:
  explicit TissueTiler(const StageContext& context) : context_(context), output_dir_(context.experiment.output_dir) {
    const Params& p = context.params;
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

  void set_lineage(const std::string& lineage) override { cache_folder_ = cache_root_ / lineage.substr(0, 16); }

  void process(const PacketPtr& slide, std::size_t, Emitter& out) override {
    const std::string& id = slide->provenance.item_id;
    const auto* fingerprint = slide->attribute<std::string>("slide_fingerprint");
    std::filesystem::path cache_file;
    std::optional<CachedGrid> grid;
    // A cached grid skips tissue detection, and with it the masks: use it only when the masks asked for exist
    // (write_masks does not change the lineage, so it may be switched on for a rerun).
    const bool masks_missing = write_masks_ && !(std::filesystem::exists(mask_file(id, ".png")) &&
                                                 std::filesystem::exists(mask_file(id, ".geojson")));
    if (cache_enabled_ && fingerprint) cache_file = cache_folder_ / cache_file_name(id, *fingerprint, ".grid");
    if (!cache_file.empty() && !masks_missing) {
      try {
        grid = read_grid_cache(cache_file);
      } catch (const std::exception& e) {
        context_.errors->add({context_.stage_id, id, 0, std::string("recomputing the grid: ") + e.what()});
      }
    }
    if (!grid) {
      grid = compute_grid(*slide);
      if (!cache_file.empty()) {
        const std::string identity = "{\"slide_id\": \"" + id + "\", \"slide_fingerprint\": \"" + *fingerprint + "\", \"content\": \"tile_grid\"}";
        try {
          write_grid_cache(cache_file, *grid, identity);
        } catch (const std::exception& e) {  // the run goes on; the next one tiles again
          context_.errors->add({context_.stage_id, id, 0, std::string("cannot cache the grid: ") + e.what()});
        }
      }
    }
    emit_grid(*slide, *grid, out);
  }

  std::vector<StageResult> results() const override {
    const std::int64_t n = masks_written_.load();
    if (n == 0) return {};
    return {{"tissue masks (" + std::to_string(n) + (n == 1 ? " slide)" : " slides)"), std::filesystem::absolute(output_dir_ / "masks")}};
  }

 private:
  std::filesystem::path mask_file(const std::string& id, const char* extension) const {
    return output_dir_ / "masks" / (id + extension);
  }

  // Tissue detection and the grid: coordinates plus the tiling attributes (no manifest attributes).
  CachedGrid compute_grid(const Packet& slide_packet) {
    const Packet* slide = &slide_packet;
    const std::string& id = slide->provenance.item_id;
    const std::string path = slide->require<std::string>("path");
    const SlideReader reader(path);
    const SlideProperties props = reader.properties();
    const double* manifest_mpp = slide->attribute<double>("mpp");
    const double slide_mpp =
        resolve_mpp(id, manifest_mpp ? std::optional<double>(*manifest_mpp) : std::nullopt, props, assume_mpp_);
    double target_mpp = mpp_;
    if (magnification_ > 0)  // relative to the scan's objective when known, else the 10/magnification rule
      target_mpp = props.objective_power ? slide_mpp * *props.objective_power / magnification_ : 10.0 / magnification_;
    const double scale = target_mpp / slide_mpp;  // level-0 pixels per target pixel
    const SlideLevel& base = props.levels[0];

    // Tissue mask near mask_mpp, from the finest level that is not finer than needed.
    const double mask_downsample = std::max(1.0, mask_mpp_ / slide_mpp);
    int mask_level = finer_level_for(props, mask_downsample);
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
    grid.attributes["mpp_source"] = manifest_mpp ? std::string("manifest") : props.mpp_x ? props.mpp_source : std::string("assume_mpp");
    if (props.objective_power) grid.attributes["objective_power"] = *props.objective_power;
    return grid;
  }

  void emit_grid(const Packet& slide, const CachedGrid& cached, Emitter& out) const {
    const auto tiles = static_cast<std::int64_t>(cached.coords.size() / 2);
    const auto& a = cached.attributes;
    const auto read_level = static_cast<std::int32_t>(std::get<std::int64_t>(a.at("read_level")));
    const auto extent = static_cast<std::int32_t>(std::lround(std::get<double>(a.at("extent_level0"))));
    Packet grid;
    grid.kind = kGridKind;
    grid.provenance = slide.provenance;
    grid.attributes = slide.attributes;
    for (const auto& [key, value] : a) grid.attributes[key] = value;
    grid.tensor = Tensor::zeros(DType::Int64, {tiles, 2});
    std::copy(cached.coords.begin(), cached.coords.end(), grid.tensor.data<std::int64_t>());
    out.emit(std::move(grid), 1);

    for (std::int64_t i = 0; i < tiles; ++i) {
      Packet ref;
      ref.kind = kTileRefKind;
      ref.provenance = slide.provenance;
      ref.provenance.tile = TileCoord{cached.coords[2 * i], cached.coords[2 * i + 1], read_level, extent};
      ref.attributes = slide.attributes;
      for (const char* key : {"read_size", "tile_size", "mpp"}) ref.attributes[key] = a.at(key);
      ref.attributes["tile_index"] = i;
      ref.attributes["tiles_in_slide"] = tiles;
      out.emit(std::move(ref), 0);
    }
  }

  StageContext context_;
  std::filesystem::path cache_root_, cache_folder_;
  bool cache_enabled_ = true;
  std::filesystem::path output_dir_;
  double mpp_, magnification_, min_tissue_, mask_mpp_, min_piece_area_;
  std::int64_t size_, stride_;
  TissueMaskOptions mask_options_;
  std::optional<double> assume_mpp_;
  bool write_masks_;
  std::atomic<std::int64_t> masks_written_{0};  // process() runs concurrently
};

}  // namespace

void register_tissue_tiler(Registry& registry) {
  StageContract c;
  c.type = "tissue_tiler";
  c.summary = "Finds tissue (saturation + Otsu at low resolution) and tiles it on a grid at a target mpp";
  c.doc = "The mask is computed near mask_mpp from the closest finer pyramid level: saturation with Otsu's threshold\n"
          "(never below min_saturation), closing and opening, pieces smaller than min_piece_area dropped, holes filled.\n"
          "The grid covers the slide with full tiles of `size` pixels at `mpp` (or `magnification`), stepping by\n"
          "`stride` (or size - overlap); a tile is kept when its tissue fraction reaches min_tissue. Coordinates are\n"
          "level-0 pixels, row-major. Tiles are read later from the closest finer level and resized with\n"
          "antialiasing. The mpp comes from the manifest, then the slide, then assume_mpp; a slide without one, or\n"
          "with an implausible one, fails with an error record. A slide with no tissue tile fails likewise.\n"
          "Grids are cached (cache_grids) under <cache>/<lineage>/<slide>-<fingerprint>.grid as sealed files; a cached\n"
          "grid is used as it is, unless write_masks is on and the slide's masks are missing (then the slide is tiled\n"
          "again, which writes them).";
  c.inputs = {{"slides", kSlideKind, "slides from slide_source"}};
  PortSpec tiles{"tiles", kTileRefKind, "where to read each tile (admitted under max_tiles_in_flight)"};
  tiles.gated = true;
  PortSpec grid{"grid", kGridKind, "one per slide: int64 [N, 2] level-0 (x, y) of its tiles, with tiling attributes"};
  grid.may_be_unused = true;
  c.outputs = {tiles, grid};
  c.params = {param_float("mpp", 0.5, "Target microns per pixel of the tiles", 0.05, 16),
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
              not_affecting_output(param_bool("cache_grids", true, "Keep each slide's grid, keyed by the slide's fingerprint and these parameters: a rerun, or another encoder, skips tissue detection")),
              not_affecting_output(param_path("cache", "Folder of cached grids; empty: <experiment output>/cache/tiling"))};
  c.concurrency = Concurrency::Unlimited;
  c.example = "[stage.tiles]\nuse = \"tissue_tiler\"\ninput = \"slides\"\nmpp = 0.5\nsize = 224\nmin_tissue = 0.5\n";
  register_stage<TissueTiler>(registry, std::move(c));
}

}  // namespace histoflow::slides
