// Training tiles from whole slides: every tissue tile of a manifest's slides (tissue_tiler's grids, cached the
// same way), drawn as a stream of seeded shuffled epochs. Emits tile references for tile_reader, so the pixels
// are read in parallel downstream; sample s depends on (seed, s) only, so a resumed run sees the same tiles.
#include <tbb/parallel_for.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "histoflow/atomic_file.hpp"
#include "histoflow/sha256.hpp"
#include "histoflow/stage.hpp"
#include "histoflow/slides/manifest.hpp"
#include "histoflow/slides/manifest_params.hpp"
#include "shuffled_index.hpp"
#include "slide_fingerprint.hpp"
#include "slide_stages.hpp"
#include "tissue_grid.hpp"

namespace histoflow::slides {
namespace {

struct TiledSlide {
  const SlideEntry* entry = nullptr;
  CachedGrid grid;
  TileReading reading;     // from the grid's attributes, once
  std::int64_t tiles = 0;
  std::int64_t first = 0;  // index of its first tile among all slides' tiles
};

class SlideTileSampler final : public Stage {
 public:
  explicit SlideTileSampler(const StageContext& context)
      : context_(context),
        options_(manifest_options(context.params)),
        gridder_(context.params, context.experiment.output_dir),
        samples_(context.params.get_int("samples")),
        seed_(context.params.get_int("seed") >= 0 ? static_cast<std::uint64_t>(context.params.get_int("seed")) : context.experiment.seed) {
    // Grids depend on the tiling parameters and the mpp column only: the same key whatever the sampling.
    std::string key = "slide_tile_sampler grid v1";
    for (const auto& spec : tiling_params())
      if (spec.affects_output) key += "\n" + spec.name + "=" + value_to_string(context.params.all().at(spec.name));
    key += "\nmpp_column=" + context.params.get_string("mpp_column");
    gridder_.set_cache_key(sha256_hex(key).substr(0, 16));
  }

  // Every slide is tiled (or its grid read from the cache) before the first sample: the epochs need the count.
  void open() override {
    manifest_ = load_manifest(context_.params.get_string("manifest"), options_);
    for (const auto& skipped : manifest_.skipped)
      context_.errors->add({context_.stage_id, "", 0, "skipped (on_missing = \"skip\"): " + skipped});
    slides_.resize(manifest_.slides.size());
    std::vector<std::string> failures(manifest_.slides.size());
    tbb::parallel_for(std::size_t{0}, manifest_.slides.size(), [&](std::size_t i) {
      const SlideEntry& entry = manifest_.slides[i];
      slides_[i].entry = &entry;
      try {
        slides_[i].grid = gridder_.grid({entry.id, entry.path, slide_fingerprint(entry.path), entry.mpp}, *context_.errors, context_.stage_id);
      } catch (const std::exception& e) {
        failures[i] = e.what();
      }
    });
    std::string first_failures;
    std::size_t failed = 0;
    for (std::size_t i = 0; i < failures.size(); ++i) {
      if (failures[i].empty()) continue;
      context_.errors->add({context_.stage_id, manifest_.slides[i].id, 0, failures[i]});
      if (++failed <= 3) first_failures += "\n  " + failures[i];
    }
    std::erase_if(slides_, [](const TiledSlide& s) { return s.grid.coords.empty(); });
    for (auto& slide : slides_) {
      slide.reading = tile_reading(slide.grid);
      slide.tiles = static_cast<std::int64_t>(slide.grid.coords.size() / 2);
      slide.first = total_;
      total_ += slide.tiles;
    }
    if (total_ == 0)
      throw FatalError("no tissue tile in any of the " + std::to_string(manifest_.slides.size()) + " slides of " +
                       manifest_.file.string() + (failed > 3 ? " (the first 3 of " + std::to_string(failed) + " failures below)" : "") +
                       ":" + first_failures);
    nlohmann::json record{{"manifest", manifest_.file.string()}, {"tiles", total_}, {"slides", nlohmann::json::array()}};
    for (const auto& slide : slides_)
      record["slides"].push_back({{"slide_id", slide.entry->id}, {"tiles", slide.tiles}});
    record["failed_slides"] = failed;
    write_file_atomically(context_.experiment.output_dir / (context_.stage_id + "_tiles.json"), record.dump(2) + "\n");
  }

  std::int64_t size_hint() const override { return samples_ > 0 ? samples_ : -1; }

  bool generate(Emitter& out) override {
    const std::uint64_t index = next_++;
    if (samples_ > 0 && index >= static_cast<std::uint64_t>(samples_)) return false;
    const auto n = static_cast<std::uint64_t>(total_);
    const std::uint64_t epoch = index / n;
    const auto tile = static_cast<std::int64_t>(shuffled_index(index % n, n, seed_ * 0x9e3779b97f4a7c15ULL + epoch));
    const auto slide = std::prev(std::upper_bound(slides_.begin(), slides_.end(), tile,
                                                  [](std::int64_t t, const TiledSlide& s) { return t < s.first; }));
    const std::int64_t i = tile - slide->first;
    Packet ref;
    ref.kind = kTileRefKind;
    ref.provenance.item_id = slide->entry->id;
    ref.provenance.sequence = index;
    ref.provenance.tile = slide->reading.at(slide->grid, i);
    ref.attributes = slide->reading.attributes;
    ref.attributes["slide_id"] = slide->entry->id;
    ref.attributes["path"] = slide->entry->path.string();
    ref.attributes["tile_index"] = i;
    ref.attributes["tiles_in_slide"] = slide->tiles;
    out.emit(std::move(ref));
    return samples_ <= 0 || next_ < static_cast<std::uint64_t>(samples_);
  }

 private:
  StageContext context_;
  ManifestOptions options_;
  TissueGridder gridder_;
  std::int64_t samples_;
  std::uint64_t seed_;
  Manifest manifest_;
  std::vector<TiledSlide> slides_;
  std::int64_t total_ = 0;
  std::uint64_t next_ = 0;
};

}  // namespace

void register_slide_tile_sampler(Registry& registry) {
  StageContract c;
  c.type = "slide_tile_sampler";
  c.summary = "Samples tissue tiles from a manifest's slides as an endless stream of seeded shuffled epochs (training data)";
  c.doc = "When the run opens, every slide is tiled as tissue_tiler tiles it (same parameters, same mask, grids cached\n"
          "under <cache>/<key>/ keyed by the tiling parameters and each slide's fingerprint). An epoch is one seeded\n"
          "permutation of all tissue tiles of all slides (a Feistel permutation: no list of tiles is kept), so each\n"
          "tile is drawn once per epoch; the stream is endless (samples = 0, for a trainer that ends the run) or\n"
          "`samples` long. provenance.sequence is the sample's position, and sample s depends on (seed, s) only. A\n"
          "slide that cannot be tiled is an error record and left out; when no slide has a tissue tile the run stops\n"
          "before any work. <output>/<stage>_tiles.json lists the tiles per slide. Emits tile references: follow it\n"
          "with tile_reader.";
  c.outputs = {{"tiles", kTileRefKind, "where to read each sampled tile"}};
  c.params = manifest_params({});
  for (auto& spec : tiling_params()) c.params.push_back(std::move(spec));
  c.params.push_back(param_int("samples", 0, "Stream length; 0: endless", 0));
  c.params.push_back(param_int("seed", -1, "Seed of the shuffles; -1: the experiment's seed", -1));
  c.rules = {rule_file_exists("manifest")};
  c.example =
      "[stage.tiles]\nuse = \"slide_tile_sampler\"\nmanifest = \"data/tcga_crc.csv\"\nmpp = 0.5\nsize = 224\n\n"
      "[stage.read]\nuse = \"tile_reader\"\ninput = \"tiles\"\n";
  register_stage<SlideTileSampler>(registry, std::move(c));
}

}  // namespace histoflow::slides
