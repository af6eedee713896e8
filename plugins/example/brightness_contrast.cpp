// A one-to-one tile transform: optional grayscale, then out = (in - 128) * contrast + 128 + brightness * 255,
// clamped to 0..255. Deterministic (no randomness), so runs are reproducible and tests can check exact pixels.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "example_stages.hpp"

namespace histoflow::example {
namespace {

class BrightnessContrast final : public Stage {
 public:
  // Parameters are validated against the contract before construction: read them once, here.
  explicit BrightnessContrast(const StageContext& context) : grayscale_(context.params.get_bool("grayscale")) {
    const double brightness = context.params.get_float("brightness");
    const double contrast = context.params.get_float("contrast");
    for (int v = 0; v < 256; ++v)
      lookup_[v] = static_cast<std::uint8_t>(
          std::clamp(std::lround((v - 128.0) * contrast + 128.0 + brightness * 255.0), 0L, 255L));
  }

  // Called concurrently (Concurrency::Unlimited): it only reads members set in the constructor.
  void process(const PacketPtr& input, std::size_t, Emitter& out) override {
    const Tensor& in = input->tensor;
    if (in.dim() != 3 || in.shape()[2] != 3 || in.dtype() != DType::UInt8)
      throw std::invalid_argument("expected an RGB uint8 tile [H, W, 3], got " + in.describe());  // an error record
    Tensor result = Tensor::zeros(DType::UInt8, in.shape());
    const auto src = in.span<std::uint8_t>();
    const auto dst = result.span<std::uint8_t>();
    for (std::size_t p = 0; p < src.size(); p += 3) {
      if (grayscale_) {  // ITU-R BT.601 luma, replicated on the three channels
        const auto y = static_cast<std::uint8_t>(std::lround(0.299 * src[p] + 0.587 * src[p + 1] + 0.114 * src[p + 2]));
        dst[p] = dst[p + 1] = dst[p + 2] = lookup_[y];
      } else {
        for (int ch = 0; ch < 3; ++ch) dst[p + ch] = lookup_[src[p + ch]];
      }
    }
    // Packets are immutable: build a new one, keeping the input's provenance and attributes (label, ...).
    Packet tile;
    tile.kind = kTileKind;
    tile.provenance = input->provenance;
    tile.attributes = input->attributes;
    tile.tensor = std::move(result);
    out.emit(std::move(tile));
  }

 private:
  bool grayscale_;
  std::uint8_t lookup_[256];
};

}  // namespace

void register_brightness_contrast(Registry& registry) {
  StageContract c;
  c.type = "brightness_contrast";
  c.summary = "Changes tile brightness and contrast (optionally grayscale first); one tile out per tile in";
  c.doc = "Each channel value v becomes clamp((v - 128) * contrast + 128 + brightness * 255, 0, 255).\n"
          "With grayscale = true the tile is first converted to luma (0.299 R + 0.587 G + 0.114 B), replicated\n"
          "on the three channels. Provenance and attributes (such as 'label') are kept.";
  c.inputs = {{"tiles", kTileKind, "RGB uint8 tiles [H, W, 3]"}};
  c.outputs = {{"tiles", kTileKind, "the adjusted tiles, same shape"}};
  c.params = {param_float("brightness", 0.0, "Offset added to every value, as a fraction of 255", -1, 1),
              param_float("contrast", 1.0, "Scale around mid-grey 128 (1 = unchanged, 0 = flat grey)", 0, 4),
              param_bool("grayscale", false, "Convert to grayscale (replicated on 3 channels) before adjusting")};
  c.concurrency = Concurrency::Unlimited;
  c.cardinality = Cardinality::OneToOne;
  c.example = "[stage.adjust]\nuse = \"brightness_contrast\"\ninput = \"tiles\"\nbrightness = 0.05\ncontrast = 1.2\n";
  register_stage<BrightnessContrast>(registry, std::move(c));
}

}  // namespace histoflow::example
