// A source of synthetic H&E-like tiles: pink stroma with purple nuclei, or white background.
// Deterministic by seed, so demos and tests need no data on disk.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "core_stages.hpp"

namespace histoflow::core {
namespace {

class SyntheticTiles final : public Stage {
 public:
  explicit SyntheticTiles(const StageContext& context)
      : count_(context.params.get_int("count")),
        size_(context.params.get_int("size")),
        classes_(context.params.get_int("classes")),
        background_(context.params.get_float("background")),
        prefix_(context.params.get_string("id_prefix")),
        pool_(context.params.get_int("pool")),
        seed_(context.params.get_int("seed") >= 0 ? static_cast<std::uint64_t>(context.params.get_int("seed"))
                                                  : context.experiment.seed) {}

  std::int64_t size_hint() const override { return count_; }

  // A pool of distinct tiles painted once, before any is emitted: a benchmark's encoder-only baseline then times the
  // encoder, not the painting.
  void open() override {
    for (std::int64_t i = 0; i < std::min(pool_, count_); ++i) pooled_.push_back(paint(i));
  }

  bool generate(Emitter& out) override {
    if (next_ >= count_) return false;
    const std::int64_t index = next_++;
    Painted painted = pooled_.empty() ? paint(index) : copy(pooled_[static_cast<std::size_t>(index % pool_)]);
    Packet packet;
    packet.kind = kTileKind;
    packet.provenance.item_id = prefix_ + "-" + std::to_string(index);
    packet.provenance.sequence = static_cast<std::uint64_t>(index);
    packet.provenance.tile = TileCoord{(index % 64) * size_, (index / 64) * size_, 0, static_cast<std::int32_t>(size_)};
    packet.tensor = std::move(painted.tile);
    packet.attributes["label"] = painted.label;
    out.emit(std::move(packet));
    return next_ < count_;
  }

 private:
  struct Painted {
    Tensor tile;
    std::int64_t label;  // -1: background
  };

  // Each packet owns its pixels, as a reader's do: a downstream stage may change them.
  static Painted copy(const Painted& pooled) {
    Tensor tile = Tensor::zeros(DType::UInt8, pooled.tile.shape());
    std::memcpy(tile.raw_data(), pooled.tile.raw_data(), tile.nbytes());
    return {std::move(tile), pooled.label};
  }

  Painted paint(std::int64_t index) const {
    std::mt19937_64 rng(seed_ * 1'000'003ULL + static_cast<std::uint64_t>(index));
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const bool background = unit(rng) < background_;
    const std::int64_t label = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(classes_));

    Tensor tile = Tensor::zeros(DType::UInt8, {size_, size_, 3});
    auto pixels = tile.span<std::uint8_t>();
    // Class k has nuclei density and size growing with k: a learnable, visible difference.
    const double density = 0.002 + 0.004 * static_cast<double>(label);
    const double radius = 2.0 + 1.5 * static_cast<double>(label);
    std::normal_distribution<double> noise(0.0, 6.0);
    for (std::int64_t i = 0; i < size_ * size_; ++i) {
      const double n = noise(rng);
      const double r = background ? 245 : 235, g = background ? 245 : 160, b = background ? 245 : 200;  // stroma: pink
      pixels[3 * i + 0] = static_cast<std::uint8_t>(std::clamp(r + n, 0.0, 255.0));
      pixels[3 * i + 1] = static_cast<std::uint8_t>(std::clamp(g + n, 0.0, 255.0));
      pixels[3 * i + 2] = static_cast<std::uint8_t>(std::clamp(b + n, 0.0, 255.0));
    }
    if (!background) {
      const auto nuclei = static_cast<std::int64_t>(density * static_cast<double>(size_ * size_));
      for (std::int64_t k = 0; k < nuclei; ++k) {
        const double cx = unit(rng) * static_cast<double>(size_), cy = unit(rng) * static_cast<double>(size_);
        const double rr = radius * (0.7 + 0.6 * unit(rng));
        for (std::int64_t y = std::max<std::int64_t>(0, static_cast<std::int64_t>(cy - rr));
             y < std::min<std::int64_t>(size_, static_cast<std::int64_t>(cy + rr) + 1); ++y)
          for (std::int64_t x = std::max<std::int64_t>(0, static_cast<std::int64_t>(cx - rr));
               x < std::min<std::int64_t>(size_, static_cast<std::int64_t>(cx + rr) + 1); ++x) {
            if (std::hypot(static_cast<double>(x) - cx, static_cast<double>(y) - cy) > rr) continue;
            std::uint8_t* p = &pixels[3 * (y * size_ + x)];
            p[0] = 90, p[1] = 50, p[2] = 140;  // haematoxylin purple
          }
      }
    }
    return {std::move(tile), background ? std::int64_t{-1} : label};
  }

  std::int64_t count_, size_, classes_;
  double background_;
  std::string prefix_;
  std::int64_t pool_;
  std::vector<Painted> pooled_;
  std::uint64_t seed_;
  std::int64_t next_ = 0;
};

}  // namespace

void register_synthetic_tiles(Registry& registry) {
  StageContract c;
  c.type = "synthetic_tiles";
  c.summary = "Generates H&E-like RGB tiles (pink stroma, purple nuclei, some white background), deterministic by seed";
  c.doc = "Tile class k has denser, larger nuclei as k grows, so colour statistics separate the classes.\n"
          "Attribute 'label' holds the class, or -1 for background tiles.";
  c.outputs = {{"tiles", kTileKind, "uint8 [size, size, 3] RGB tiles"}};
  ParamSpec count = param_required("count", ParamType::Int, "Number of tiles to generate");
  count.min = 0;
  c.params = {count,
              param_int("size", 224, "Tile edge in pixels", 8, 4096),
              param_int("classes", 2, "Number of tissue classes", 1, 16),
              param_float("background", 0.1, "Fraction of tiles that are white background", 0, 1),
              param_int("seed", -1, "Random seed; -1 uses the experiment seed", -1, 9.2e18),
              param_string("id_prefix", "synthetic", "Prefix of the item ids"),
              param_int("pool", 0,
                        "Paint this many distinct tiles when the stage opens and emit them in turn (tile i is tile i mod "
                        "pool), so that a benchmark times what consumes the tiles, not their painting; 0 paints each "
                        "tile as it is emitted",
                        0, 1'000'000)};
  c.example = "[stage.tiles]\nuse = \"synthetic_tiles\"\ncount = 256\nsize = 224\n";
  register_stage<SyntheticTiles>(registry, std::move(c));
}

}  // namespace histoflow::core
