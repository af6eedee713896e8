// Tissue detection and tiling (tissue_grid.hpp): a mask at low resolution, then a grid at the target resolution
// whose tiles keep enough tissue. Emits where to read each tile (read level, read size) and the slide's grid.
#include "histoflow/stage.hpp"
#include "slide_stages.hpp"
#include "tissue_grid.hpp"

namespace histoflow::slides {
namespace {

class TissueTiler final : public Stage {
 public:
  explicit TissueTiler(const StageContext& context)
      : context_(context), output_dir_(context.experiment.output_dir), gridder_(context.params, context.experiment.output_dir) {}

  void set_lineage(const std::string& lineage) override { gridder_.set_cache_key(lineage.substr(0, 16)); }

  void process(const PacketPtr& slide, std::size_t, Emitter& out) override {
    const auto* fingerprint = slide->attribute<std::string>("slide_fingerprint");
    const double* mpp = slide->attribute<double>("mpp");
    const SlideToTile which{slide->provenance.item_id, slide->require<std::string>("path"), fingerprint ? *fingerprint : "",
                            mpp ? std::optional<double>(*mpp) : std::nullopt};
    emit_grid(*slide, gridder_.grid(which, *context_.errors, context_.stage_id), out);
  }

  std::vector<StageResult> results() const override {
    const std::int64_t n = gridder_.masks_written();
    if (n == 0) return {};
    return {{"tissue masks (" + std::to_string(n) + (n == 1 ? " slide)" : " slides)"), std::filesystem::absolute(output_dir_ / "masks")}};
  }

 private:
  void emit_grid(const Packet& slide, const CachedGrid& cached, Emitter& out) const {
    const auto tiles = static_cast<std::int64_t>(cached.coords.size() / 2);
    Packet grid;
    grid.kind = kGridKind;
    grid.provenance = slide.provenance;
    grid.attributes = slide.attributes;
    for (const auto& [key, value] : cached.attributes) grid.attributes[key] = value;
    grid.tensor = Tensor::zeros(DType::Int64, {tiles, 2});
    std::copy(cached.coords.begin(), cached.coords.end(), grid.tensor.data<std::int64_t>());
    out.emit(std::move(grid), 1);

    const TileReading reading = tile_reading(cached);
    for (std::int64_t i = 0; i < tiles; ++i) {
      Packet ref;
      ref.kind = kTileRefKind;
      ref.provenance = slide.provenance;
      ref.provenance.tile = reading.at(cached, i);
      ref.attributes = slide.attributes;
      for (const auto& [key, value] : reading.attributes) ref.attributes[key] = value;
      ref.attributes["tile_index"] = i;
      ref.attributes["tiles_in_slide"] = tiles;
      out.emit(std::move(ref), 0);
    }
  }

  StageContext context_;
  std::filesystem::path output_dir_;
  TissueGridder gridder_;
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
          "with an implausible one, fails with an error record. So does a slide whose own mpp-x and mpp-y differ by\n"
          "more than 1% (non-square pixels; a manifest mpp is taken as square). A slide with no tissue tile fails too.\n"
          "Grids are cached (cache_grids) under <cache>/<lineage>/<slide>-<fingerprint>.grid as sealed files; a cached\n"
          "grid is used as it is, unless write_masks is on and the slide's masks are missing (then the slide is tiled\n"
          "again, which writes them).";
  c.inputs = {{"slides", kSlideKind, "slides from slide_source"}};
  PortSpec tiles{"tiles", kTileRefKind, "where to read each tile (admitted under max_tiles_in_flight)"};
  tiles.gated = true;
  PortSpec grid{"grid", kGridKind, "one per slide: int64 [N, 2] level-0 (x, y) of its tiles, with tiling attributes"};
  grid.may_be_unused = true;
  c.outputs = {tiles, grid};
  c.params = tiling_params();
  c.concurrency = Concurrency::Unlimited;
  c.example = "[stage.tiles]\nuse = \"tissue_tiler\"\ninput = \"slides\"\nmpp = 0.5\nsize = 224\nmin_tissue = 0.5\n";
  register_stage<TissueTiler>(registry, std::move(c));
}

}  // namespace histoflow::slides
