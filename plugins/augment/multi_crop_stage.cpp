// The multi_crop stage: DINOv2's multi-crop augmentation of each tile (dino_augmentation.hpp), in parallel
// across tiles. A sample's crops depend only on the seed and the tile's position in its stream
// (provenance.sequence), so runs are identical at any thread count and after a resume.
#include <stdexcept>
#include <string>

#include "augment_stages.hpp"
#include "histoflow/augment/dino_augmentation.hpp"
#include "histoflow/kind.hpp"
#include "histoflow/stage.hpp"

namespace histoflow::augment {
namespace {

ScaleRange range_param(const Params& params, const std::string& name) {
  const auto& values = params.get_float_list(name);
  if (values.size() != 2 || !(values[0] > 0) || !(values[0] <= values[1]) || values[1] > 1)
    throw std::invalid_argument(name + " must be [low, high] with 0 < low <= high <= 1");
  return {values[0], values[1]};
}

MultiCropRecipe recipe_from(const Params& p) {
  MultiCropRecipe r;
  r.layout.global_size = p.get_int("global_size");
  r.layout.local_size = p.get_int("local_size");
  r.layout.local_number = p.get_int("local_number");
  r.global_scale = range_param(p, "global_scale");
  r.local_scale = range_param(p, "local_scale");
  r.vertical_flip = p.get_bool("vertical_flip");
  r.jitter_probability = p.get_float("jitter_probability");
  r.brightness = p.get_float("brightness");
  r.contrast = p.get_float("contrast");
  r.saturation = p.get_float("saturation");
  r.hue = p.get_float("hue");
  r.grayscale_probability = p.get_float("grayscale_probability");
  const auto& blur = p.get_float_list("blur_probability");
  if (blur.size() != 3) throw std::invalid_argument("blur_probability must list 3 probabilities (global 1, global 2, local)");
  for (std::size_t i = 0; i < 3; ++i) {
    if (!(blur[i] >= 0 && blur[i] <= 1)) throw std::invalid_argument("blur_probability values must be in [0, 1]");
    r.blur_probability[i] = blur[i];
  }
  const auto& sigma = p.get_float_list("blur_sigma");
  if (sigma.size() != 2 || !(sigma[0] > 0) || !(sigma[0] <= sigma[1])) throw std::invalid_argument("blur_sigma must be [low, high] with 0 < low <= high");
  r.blur_sigma_min = sigma[0];
  r.blur_sigma_max = sigma[1];
  r.solarize_probability = p.get_float("solarize_probability");
  return r;
}

class MultiCrop final : public Stage {
 public:
  explicit MultiCrop(const StageContext& context)
      : recipe_(recipe_from(context.params)),
        seed_(context.params.get_int("seed") >= 0 ? static_cast<std::uint64_t>(context.params.get_int("seed")) : context.experiment.seed) {}

  // Called concurrently (Concurrency::Unlimited): reads only members set in the constructor.
  void process(const PacketPtr& input, std::size_t, Emitter& out) override {
    const Tensor& in = input->tensor;
    if (in.dim() != 3 || in.shape()[2] != 3 || in.dtype() != DType::UInt8)
      throw std::invalid_argument("expected an RGB uint8 tile [H, W, 3], got " + in.describe());
    RgbImage image;
    image.height = static_cast<int>(in.shape()[0]);
    image.width = static_cast<int>(in.shape()[1]);
    const auto pixels = in.span<std::uint8_t>();
    image.pixels.assign(pixels.begin(), pixels.end());
    Packet crops;
    crops.kind = kCropsKind;
    crops.provenance = input->provenance;
    for (const char* kept : {"label", "path"})
      if (auto it = input->attributes.find(kept); it != input->attributes.end()) crops.attributes.insert(*it);
    set_crops_layout(crops, recipe_.layout);
    crops.tensor = Tensor::zeros(DType::UInt8, {static_cast<std::int64_t>(recipe_.layout.total_bytes())});
    multi_crop(image, recipe_, seed_, input->provenance.sequence, crops.tensor.span<std::uint8_t>().data());
    out.emit(std::move(crops));
  }

 private:
  MultiCropRecipe recipe_;
  std::uint64_t seed_;
};

}  // namespace

void register_multi_crop(Registry& registry) {
  StageContract c;
  c.type = "multi_crop";
  c.summary = "DINOv2's multi-crop augmentation: 2 global and N local crops of each tile, for self-supervised training";
  c.doc =
      "Per tile, as DINOv2's DataAugmentationDINO (with the study fork's vertical flip): a random resized crop\n"
      "(bicubic, Pillow-exact) with flips, colour jitter (p 0.8; brightness 0.4, contrast 0.4, saturation 0.2,\n"
      "hue 0.1, in random order), grayscale (p 0.2), Gaussian blur (kernel 9, sigma 0.1-2) and, on global crop 2,\n"
      "solarisation (p 0.2). Each operation matches torchvision on PIL images byte for byte (blur: within one\n"
      "level on rare pixels). blur_probability defaults to what the official code does, not what it says: its\n"
      "GaussianBlur(p) applies with probability 1 - p, so the nominal 1.0 / 0.1 / 0.5 run as 0.0 / 0.9 / 0.5.\n"
      "Randomness comes from (seed, the tile's position in its stream): the same seed gives the same crops at\n"
      "any thread count. Output: one ssl_crops packet per tile, uint8 (normalisation happens in the trainer).";
  c.inputs = {{"tiles", kinds::kTile, "RGB uint8 tiles [H, W, 3] (at least 5 px a side when blurred)"}};
  c.outputs = {{"crops", kCropsKind, "the tile's global and local crops"}};
  c.params = {
      param_int("global_size", 224, "Side of the 2 global crops in pixels", 8, 4096),
      param_int("local_size", 98, "Side of the local crops in pixels (98 = 7 patches of 14)", 8, 4096),
      param_int("local_number", 8, "Number of local crops per tile", 0, 64),
      param_float_list("global_scale", {0.32, 1.0}, "Area fraction range of global crops [low, high]"),
      param_float_list("local_scale", {0.05, 0.32}, "Area fraction range of local crops [low, high]"),
      param_bool("vertical_flip", true, "Also flip vertically with p 0.5 (the study's fork; the official code does not)"),
      param_float("jitter_probability", 0.8, "Probability of colour jitter per crop", 0, 1),
      param_float("brightness", 0.4, "Brightness factor range 1 +- this", 0, 1),
      param_float("contrast", 0.4, "Contrast factor range 1 +- this", 0, 1),
      param_float("saturation", 0.2, "Saturation factor range 1 +- this", 0, 1),
      param_float("hue", 0.1, "Hue shift range +- this (fraction of the hue circle)", 0, 0.5),
      param_float("grayscale_probability", 0.2, "Probability of grayscale per crop", 0, 1),
      param_float_list("blur_probability", {0.0, 0.9, 0.5}, "Blur probability for global crop 1, global crop 2, local crops"),
      param_float_list("blur_sigma", {0.1, 2.0}, "Blur sigma range [low, high]"),
      param_float("solarize_probability", 0.2, "Probability of solarisation of global crop 2", 0, 1),
      param_int("seed", -1, "Seed of the crops' randomness; -1: the experiment's seed", -1),
  };
  c.concurrency = Concurrency::Unlimited;
  c.cardinality = Cardinality::OneToOne;
  c.example = "[stage.crops]\nuse = \"multi_crop\"\ninput = \"train_tiles\"\nlocal_number = 8\n";
  register_stage<MultiCrop>(registry, std::move(c));
}

}  // namespace histoflow::augment
