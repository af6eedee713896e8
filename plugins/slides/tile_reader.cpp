// Reads tile pixels through the slide reader (the process-wide handle pool); RGBA over white; resized with
// antialiasing when the pyramid has no level at exactly the target resolution. A tile that cannot be read fails
// that tile, naming the slide (on_tile_error = "fail_slide"), or is left out and reported on output 'skipped'
// (on_tile_error = "skip_tile") until too many of the slide's tiles are lost.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include "histoflow/slides/resample.hpp"
#include "histoflow/slides/slide_reader.hpp"
#include "histoflow/stage.hpp"
#include "skipped_tile_ledger.hpp"
#include "slide_stages.hpp"

namespace histoflow::slides {
namespace {

constexpr std::size_t kSkippedPort = 1;

class TileReader final : public Stage {
 public:
  explicit TileReader(const StageContext& context) : context_(context) {
    if (context.params.get_string("on_tile_error") == "skip_tile")
      ledger_ = std::make_unique<SkippedTileLedger>(context.params.get_float("max_skipped_fraction"));
  }

  void process(const PacketPtr& ref, std::size_t, Emitter& out) override {
    if (!ref->provenance.tile) throw std::invalid_argument("tile reference for item '" + ref->provenance.item_id + "' has no tile coordinates");
    const TileCoord& where = *ref->provenance.tile;
    const std::int64_t read_size = ref->require<std::int64_t>("read_size");
    const std::int64_t size = ref->require<std::int64_t>("tile_size");
    const std::string& path = ref->require<std::string>("path");
    const std::int64_t tiles = ref->require<std::int64_t>("tiles_in_slide");
    Packet tile;
    tile.kind = kTileKind;
    tile.provenance = ref->provenance;
    tile.attributes = ref->attributes;
    tile.tensor = Tensor::zeros(DType::UInt8, {size, size, 3});
    // Only a tile that fails twice (read_with_retry) is really broken: the reason, then.
    const auto read = [&](std::uint8_t* rgb) -> std::optional<std::string> {
      try {
        read_with_retry(path, [&](const SlideReader& slide) { slide.read_region(where.x, where.y, where.level, read_size, read_size, rgb); });
        return std::nullopt;
      } catch (const SlideReadError& e) {
        return e.reason();
      }
    };
    std::optional<std::string> failure;
    if (read_size == size) {
      failure = read(tile.tensor.data<std::uint8_t>());
    } else {
      thread_local std::vector<std::uint8_t> rgb;
      rgb.resize(static_cast<std::size_t>(read_size * read_size) * 3);
      failure = read(rgb.data());
      if (!failure)
        resize_rgb(rgb.data(), static_cast<int>(read_size), static_cast<int>(read_size), tile.tensor.data<std::uint8_t>(),
                   static_cast<int>(size), static_cast<int>(size));
    }
    count_read(path, tiles);
    const std::string unreadable = failure ? "cannot read the tile at (" + std::to_string(where.x) + ", " + std::to_string(where.y) +
                                                 ") level " + std::to_string(where.level) + ": " + *failure
                                           : std::string();
    if (!ledger_) {
      if (failure) throw std::runtime_error("slide '" + ref->provenance.item_id + "': " + unreadable);
      out.emit(std::move(tile));
      return;
    }
    std::optional<SkippedTile> skipped;
    if (failure) skipped = SkippedTile{where.x, where.y, where.level, *failure};
    const auto outcome = ledger_->record(ref->provenance.item_id, path, tiles, std::move(skipped));
    if (outcome.finished) report(ref->provenance.item_id, *outcome.finished);
    if (outcome.refused) {
      std::ostringstream text;
      text << "slide '" << ref->provenance.item_id << "' ('" << path << "'): stage '" << context_.stage_id << "': "
           << describe_losses(outcome.unreadable, tiles) << " unreadable, more than max_skipped_fraction = "
           << ledger_->max_fraction() << " (on_tile_error = \"skip_tile\"): the slide is refused; " << unreadable;
      throw std::runtime_error(text.str());
    }
    if (!failure) {
      out.emit(std::move(tile));
      return;
    }
    Packet lost;  // the store accounts for it, so that the slide completes without it
    lost.kind = kTileRefKind;
    lost.provenance = ref->provenance;
    lost.attributes = ref->attributes;
    lost.attributes["read_error"] = *failure;
    out.emit(std::move(lost), kSkippedPort);
  }

  void flush(Emitter&) override {
    if (!ledger_) return;
    for (const auto& [slide, tally] : ledger_->take_unfinished()) report(slide, tally);
  }

 private:
  // After a slide's last tile its OpenSlide handles are closed (once idle): each keeps up to 32 MiB of decoded tiles
  // that the next slides do not use, and a run's peak memory grew by that on large slides. A sampler's random draws
  // reach the count too, about once an epoch: the slide is then opened again, which costs milliseconds.
  void count_read(const std::string& path, std::int64_t tiles_in_slide) {
    {
      std::lock_guard lock(counts_mutex_);
      if (++tiles_read_[path] < tiles_in_slide) return;
      tiles_read_.erase(path);
    }
    SlideReader::close_when_idle(path);
  }

  // One warning per slide that lost tiles and still goes on: how many, which and why.
  void report(const std::string& slide, const SlideTally& tally) const {
    if (tally.refused || tally.skipped.empty()) return;  // refused slides have their error records
    context_.errors->warn({context_.stage_id, slide, 0,
                           "slide '" + tally.path + "': skipped " + describe_losses(static_cast<std::int64_t>(tally.skipped.size()), tally.tiles) +
                               " under on_tile_error = \"skip_tile\": " + describe_skipped(tally.skipped)});
  }

  StageContext context_;
  std::unique_ptr<SkippedTileLedger> ledger_;  // only under skip_tile
  std::mutex counts_mutex_;
  std::map<std::string, std::int64_t> tiles_read_;  // tiles read so far of each slide not finished yet
};

}  // namespace

void register_tile_reader(Registry& registry) {
  StageContract c;
  c.type = "tile_reader";
  c.summary = "Reads the pixels of each tile (RGBA over white) and resizes them to the target size";
  c.doc = "Slides are opened through a process-wide pool of OpenSlide handles (a few per slide, reused); after a slide's\n"
          "last tile (tiles_in_slide of them read) its handles are closed, with OpenSlide's cache of decoded tiles. OpenSlide's\n"
          "error state is checked after every read, and a failed read is tried once more on a handle of its own (a\n"
          "shared handle also fails when another thread's read on it fails): a tile that still cannot be read is never\n"
          "a white tile. on_tile_error says what it is instead:\n"
          "  fail_slide: an error record naming the slide and the tile; the slide's other tiles are read, but a\n"
          "    store never completes the slide, so it gets no feature file.\n"
          "  skip_tile: the tile is left out and its reference (with attribute read_error) goes to output\n"
          "    'skipped', which slide_store takes as its third input: the slide's file then holds every other tile\n"
          "    and names the lost ones (root attribute skipped_tiles). Each slide that lost tiles is listed among the\n"
          "    run's warnings. A slide whose unreadable tiles exceed max_skipped_fraction of its grid is refused:\n"
          "    error records name the slide file, this stage, the count and the fraction.\n"
          "Both parameters are part of the lineage: files of a skip_tile run never mix with those of a fail_slide run.";
  c.inputs = {{"tiles", kTileRefKind, "tile references from tissue_tiler"}};
  PortSpec skipped{"skipped", kTileRefKind,
                   "on_tile_error = \"skip_tile\": the references of tiles left out, with read_error (slide_store's third input)"};
  skipped.may_be_unused = true;
  c.outputs = {{"tiles", kTileKind, "uint8 [size, size, 3] RGB tiles"}, skipped};
  c.params = {param_string("on_tile_error", "fail_slide",
                           "A tile that cannot be read: fail_slide (an error record; the slide gets no feature file) or "
                           "skip_tile (left out and reported on output 'skipped'; the slide goes on)",
                           {"fail_slide", "skip_tile"}),
              param_float("max_skipped_fraction", 0.05,
                          "skip_tile: the largest fraction of a slide's grid that may be left out; a slide with more "
                          "unreadable tiles is refused",
                          0, 1)};
  c.rules = {{"max_skipped_fraction only with on_tile_error = \"skip_tile\"", [](RuleCheck& check) {
                if (check.was_written("max_skipped_fraction") && std::get<std::string>(check.param("on_tile_error")) != "skip_tile")
                  check.error("max_skipped_fraction", "max_skipped_fraction applies only with on_tile_error = \"skip_tile\"");
              }}};
  c.concurrency = Concurrency::Unlimited;
  c.cardinality = Cardinality::OneToOne;
  c.example = "[stage.read]\nuse = \"tile_reader\"\ninput = \"tiles\"\non_tile_error = \"skip_tile\"  # the store then takes "
              "\"read.skipped\" as its third input\n";
  register_stage<TileReader>(registry, std::move(c));
}

}  // namespace histoflow::slides
