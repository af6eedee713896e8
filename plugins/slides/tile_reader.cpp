// Reads tile pixels through the slide reader (the process-wide handle pool); RGBA over white; resized with
// antialiasing when the pyramid has no level at exactly the target resolution. A read error fails that tile,
// naming the slide.
#include "histoflow/slides/resample.hpp"
#include "histoflow/slides/slide_reader.hpp"
#include "histoflow/stage.hpp"
#include "slide_stages.hpp"

namespace histoflow::slides {
namespace {

class TileReader final : public Stage {
 public:
  explicit TileReader(const StageContext&) {}

  void process(const PacketPtr& ref, std::size_t, Emitter& out) override {
    if (!ref->provenance.tile) throw std::invalid_argument("tile reference for item '" + ref->provenance.item_id + "' has no tile coordinates");
    const TileCoord& where = *ref->provenance.tile;
    const std::int64_t read_size = ref->require<std::int64_t>("read_size");
    const std::int64_t size = ref->require<std::int64_t>("tile_size");
    const std::string& path = ref->require<std::string>("path");
    Packet tile;
    tile.kind = kTileKind;
    tile.provenance = ref->provenance;
    tile.attributes = ref->attributes;
    tile.tensor = Tensor::zeros(DType::UInt8, {size, size, 3});
    // A shared handle enters OpenSlide's sticky error state when any read on it fails, so a failed read is
    // tried once more on a fresh handle (the reader retires the failed one): only a tile that fails twice is
    // really broken.
    const auto read = [&](std::uint8_t* rgb) {
      for (int attempt = 0;; ++attempt) {
        try {
          SlideReader(path).read_region(where.x, where.y, where.level, read_size, read_size, rgb);
          return;
        } catch (const SlideReadError& e) {
          if (attempt == 1)
            throw std::runtime_error("slide '" + ref->provenance.item_id + "': cannot read the tile at (" + std::to_string(where.x) +
                                     ", " + std::to_string(where.y) + ") level " + std::to_string(where.level) + ": " + e.reason());
        }
      }
    };
    if (read_size == size) {
      read(tile.tensor.data<std::uint8_t>());
    } else {
      thread_local std::vector<std::uint8_t> rgb;
      rgb.resize(static_cast<std::size_t>(read_size * read_size) * 3);
      read(rgb.data());
      resize_rgb(rgb.data(), static_cast<int>(read_size), static_cast<int>(read_size), tile.tensor.data<std::uint8_t>(),
                 static_cast<int>(size), static_cast<int>(size));
    }
    out.emit(std::move(tile));
  }
};

}  // namespace

void register_tile_reader(Registry& registry) {
  StageContract c;
  c.type = "tile_reader";
  c.summary = "Reads the pixels of each tile (RGBA over white) and resizes them to the target size";
  c.doc = "Slides are opened through a process-wide pool of OpenSlide handles (a few per slide, reused). OpenSlide's\n"
          "error state is checked after every read: a failed read is an error record naming the slide and the tile,\n"
          "never a white tile.";
  c.inputs = {{"tiles", kTileRefKind, "tile references from tissue_tiler"}};
  c.outputs = {{"tiles", kTileKind, "uint8 [size, size, 3] RGB tiles"}};
  c.concurrency = Concurrency::Unlimited;
  c.cardinality = Cardinality::OneToOne;
  c.example = "[stage.read]\nuse = \"tile_reader\"\ninput = \"tiles\"\n";
  register_stage<TileReader>(registry, std::move(c));
}

}  // namespace histoflow::slides
