// A cheap, real feature extractor: per-channel mean and standard deviation of a tile, in RGB or in
// optical density (Beer-Lambert: OD = -log10(I / 255)), the space stain separation works in.
#include <cmath>
#include <stdexcept>

#include "core_stages.hpp"

namespace histoflow::core {
namespace {

class ColorStats final : public Stage {
 public:
  explicit ColorStats(const StageContext& context) : optical_density_(context.params.get_string("space") == "od") {
    for (int v = 0; v < 256; ++v)
      lookup_[v] = optical_density_ ? static_cast<float>(-std::log10((static_cast<double>(v) + 1.0) / 256.0))
                                    : static_cast<float>(v) / 255.0f;
  }

  void process(const PacketPtr& batch, std::size_t, Emitter& out) override {
    const auto n = static_cast<std::int64_t>(batch->members.size());
    Tensor features = Tensor::zeros(DType::Float32, {n, 6});
    float* rows = features.data<float>();
    Packet result;
    result.kind = kFeaturesKind;
    for (std::int64_t i = 0; i < n; ++i) {
      const Packet& tile = *batch->members[static_cast<std::size_t>(i)];
      if (tile.tensor.dim() != 3 || tile.tensor.shape()[2] != 3 || tile.tensor.dtype() != DType::UInt8)
        throw std::invalid_argument("tile '" + tile.provenance.item_id + "' is " + tile.tensor.describe() +
                                    ", expected uint8 [H, W, 3]");
      const auto pixels = tile.tensor.span<std::uint8_t>();
      double sum[3] = {0, 0, 0}, sum_sq[3] = {0, 0, 0};
      for (std::size_t p = 0; p < pixels.size(); p += 3)
        for (int ch = 0; ch < 3; ++ch) {
          const double v = lookup_[pixels[p + ch]];
          sum[ch] += v;
          sum_sq[ch] += v * v;
        }
      const double count = static_cast<double>(pixels.size() / 3);
      for (int ch = 0; ch < 3; ++ch) {
        const double mean = sum[ch] / count;
        rows[i * 6 + ch] = static_cast<float>(mean);
        rows[i * 6 + 3 + ch] = static_cast<float>(std::sqrt(std::max(0.0, sum_sq[ch] / count - mean * mean)));
      }
    }
    result.tensor = std::move(features);
    set_rows_from(batch->members, result);
    // Named like an encoder's output, so feature stores describe these files the same way.
    result.attributes["encoder"] = std::string(optical_density_ ? "color_stats_od" : "color_stats_rgb");
    result.attributes["weights_sha256"] = std::string("none");
    result.attributes["output"] = std::string("pooled");
    out.emit(std::move(result));
  }

 private:
  bool optical_density_;
  float lookup_[256];
};

}  // namespace

void register_color_stats(Registry& registry) {
  StageContract c;
  c.type = "color_stats";
  c.summary = "Per-channel mean and standard deviation of each tile (6 features), in RGB or optical density";
  c.inputs = {{"tiles", kTileKind, "RGB uint8 tiles (batched by the framework)"}};
  c.outputs = {{"features", kFeaturesKind, "float32 [batch, 6]: 3 means then 3 standard deviations"}};
  c.params = {param_string("space", "od", "Colour space: 'rgb' (0..1) or 'od' (optical density)", {"rgb", "od"})};
  c.concurrency = Concurrency::Unlimited;
  c.batched = true;
  c.default_batch = 32;
  c.example = "[stage.stats]\nuse = \"color_stats\"\ninput = \"tiles\"\nbatch = 64\nspace = \"od\"\n";
  register_stage<ColorStats>(registry, std::move(c));
}

}  // namespace histoflow::core
