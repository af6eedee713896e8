// Drops tiles that are mostly background, before any expensive stage sees them.
#include <stdexcept>

#include "core_stages.hpp"

namespace histoflow::core {

double tissue_fraction(const Tensor& tile) {
  if (tile.dim() != 3 || tile.shape()[2] != 3 || tile.dtype() != DType::UInt8)
    throw std::invalid_argument("expected an RGB uint8 tile [H, W, 3], got " + tile.describe());
  const auto pixels = tile.span<std::uint8_t>();
  const std::size_t n = pixels.size() / 3;
  if (n == 0) return 0.0;
  std::size_t tissue = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int r = pixels[3 * i], g = pixels[3 * i + 1], b = pixels[3 * i + 2];
    const int max = std::max({r, g, b}), min = std::min({r, g, b});
    // Background is bright and grey (glass) or black (scanner padding); tissue is stained, hence coloured.
    const bool background = (min > 215 && max - min < 20) || max < 20;
    tissue += background ? 0 : 1;
  }
  return static_cast<double>(tissue) / static_cast<double>(n);
}

namespace {

class TissueFilter final : public Stage {
 public:
  explicit TissueFilter(const StageContext& context) : min_tissue_(context.params.get_float("min_tissue")) {}

  void process(const PacketPtr& input, std::size_t, Emitter& out) override {
    if (tissue_fraction(input->tensor) >= min_tissue_) out.emit(input);
  }

 private:
  double min_tissue_;
};

}  // namespace

void register_tissue_filter(Registry& registry) {
  StageContract c;
  c.type = "tissue_filter";
  c.summary = "Passes tiles whose tissue fraction (stained, non-background pixels) reaches min_tissue";
  c.inputs = {{"tiles", kTileKind, "RGB uint8 tiles"}};
  c.outputs = {{"tiles", kTileKind, "the tiles that pass, unchanged"}};
  c.params = {param_float("min_tissue", 0.5, "Minimum fraction of tissue pixels", 0, 1)};
  c.concurrency = Concurrency::Unlimited;
  c.cardinality = Cardinality::OneToOne;
  c.example = "[stage.tissue]\nuse = \"tissue_filter\"\ninput = \"tiles\"\nmin_tissue = 0.25\n";
  register_stage<TissueFilter>(registry, std::move(c));
}

}  // namespace histoflow::core
