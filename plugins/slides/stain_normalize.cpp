// Stain normalisation of RGB tiles (Macenko or Reinhard, stain_methods.hpp) towards a reference image, before
// any encoder. The reference is fitted once at open; the source is fitted on each tile, or once per slide on the
// slide's tissue (a thumbnail and its tissue mask), shared by every tile of that slide in flight.
#include <filesystem>

#include "histoflow/sha256.hpp"
#include "histoflow/slides/image_decode.hpp"
#include "histoflow/slides/slide_reader.hpp"
#include "histoflow/stage.hpp"
#include "once_per_key.hpp"
#include "slide_fingerprint.hpp"
#include "slide_stages.hpp"
#include "stain_methods.hpp"
#include "tissue_mask.hpp"

namespace histoflow::slides {
namespace {

const char* method_name(StainMethod method) { return method == StainMethod::Macenko ? "Macenko" : "Reinhard"; }

// The slide's tissue pixels, gathered: its thumbnail `width` pixels wide (or the coarsest level, if narrower)
// under its tissue mask (saturation + Otsu with tissue_mask's defaults).
std::vector<std::uint8_t> slide_tissue_pixels(const std::string& path, int width) {
  const RgbImage thumbnail = read_with_retry(path, [&](const SlideReader& slide) { return slide.thumbnail(width); });
  const Mask mask = tissue_mask(thumbnail, TissueMaskOptions{}).mask;
  std::vector<std::uint8_t> pixels;
  for (std::size_t i = 0; i < mask.data.size(); ++i)
    if (mask.data[i]) pixels.insert(pixels.end(), &thumbnail.pixels[3 * i], &thumbnail.pixels[3 * i + 3]);
  return pixels;
}

class StainNormalize final : public Stage {
 public:
  explicit StainNormalize(const StageContext& context)
      : method_(context.params.get_string("method") == "macenko" ? StainMethod::Macenko : StainMethod::Reinhard),
        reference_(context.params.get_string("reference")),
        per_slide_(context.params.get_string("fit") == "slide"),
        reference_is_slide_(context.params.get_string("reference_fit") == "slide"),
        slide_fit_width_(static_cast<int>(context.params.get_int("slide_fit_width"))) {
    options_.light_intensity = context.params.get_float("light_intensity");
    options_.beta = context.params.get_float("beta");
    options_.alpha = context.params.get_float("alpha");
    options_.min_stained_fraction = context.params.get_float("min_stained_fraction");
  }

  void open() override {
    ensure_vips();
    std::vector<std::uint8_t> rgb;
    if (reference_is_slide_) {
      rgb = slide_tissue_pixels(reference_.string(), slide_fit_width_);  // a reference slide's tissue, as fit = "slide"
    } else {
      rgb = decode_rgb(reference_).pixels;  // throws naming the file
    }
    StainFitResult fitted = fit_stains(method_, rgb.data(), rgb.size() / 3, options_);
    if (!fitted.fit)
      throw std::runtime_error("reference image '" + reference_.string() + "' cannot be fitted (" + method_name(method_) +
                               "): " + fitted.problem + "; choose a reference showing stained tissue");
    target_ = *fitted.fit;
    // A reference slide (gigabytes) is known by its fingerprint, as cached results are; an image by its SHA-256.
    identity_ = reference_is_slide_ ? "reference slide " + slide_fingerprint(reference_) : "reference sha256 " + sha256_file(reference_);
  }

  std::string identity() const override { return identity_; }

  void process(const PacketPtr& input, std::size_t, Emitter& out) override {
    const Tensor& in = input->tensor;
    if (in.dim() != 3 || in.shape()[2] != 3 || in.dtype() != DType::UInt8 || !in.is_contiguous() || in.device().kind != Device::Kind::CPU)
      throw std::invalid_argument("item '" + input->provenance.item_id + "': expected an RGB uint8 tile [H, W, 3] on the CPU, got " +
                                  in.describe());
    const auto pixels = static_cast<std::size_t>(in.shape()[0] * in.shape()[1]);
    const std::uint8_t* rgb = in.data<std::uint8_t>();

    std::shared_ptr<const StainFit> slide_fit;
    std::optional<StainFit> tile_fit;
    if (per_slide_) {
      slide_fit = fit_of_slide(input->require<std::string>("path"), input->provenance.item_id);
    } else {
      tile_fit = fit_stains(method_, rgb, pixels, options_).fit;
      if (!tile_fit) {  // mostly background: nothing to estimate stains from, so the tile passes unchanged
        out.emit(input);
        return;
      }
    }
    Packet tile;
    tile.kind = kTileKind;
    tile.provenance = input->provenance;
    tile.attributes = input->attributes;
    tile.tensor = Tensor::zeros(DType::UInt8, in.shape());
    apply_stains(per_slide_ ? *slide_fit : *tile_fit, target_, rgb, tile.tensor.data<std::uint8_t>(), pixels, options_);
    out.emit(std::move(tile));
  }

 private:
  std::shared_ptr<const StainFit> fit_of_slide(const std::string& path, const std::string& item_id) {
    return slide_fits_.get(path, [&] {
      const auto pixels = slide_tissue_pixels(path, slide_fit_width_);
      StainFitResult fitted = fit_stains(method_, pixels.data(), pixels.size() / 3, options_);
      if (!fitted.fit)
        throw std::runtime_error("slide '" + item_id + "' (" + path + "): cannot fit " + method_name(method_) +
                                 " stains on its tissue: " + fitted.problem);
      return *fitted.fit;
    });
  }

  StainMethod method_;
  std::filesystem::path reference_;
  bool per_slide_;
  bool reference_is_slide_;
  int slide_fit_width_;
  StainOptions options_;
  StainFit target_;
  std::string identity_;
  OncePerKey<StainFit> slide_fits_;
};

}  // namespace

void register_stain_normalize(Registry& registry) {
  StageContract c;
  c.type = "stain_normalize";
  c.summary = "Normalises H&E stains of RGB tiles towards a reference image (Macenko or Reinhard); one tile per tile";
  c.doc = "Place it after tile_reader or patch_folder and before any encoder. The reference image is fitted once at\n"
          "open (a reference that cannot be read, or shows too few stained pixels, fails the run before any tile).\n"
          "method = \"macenko\": stain vectors and maximal concentrations (Macenko 2009; OD = -ln((I + 1) / Io) with\n"
          "Io = light_intensity; pixels with OD < beta in any channel left out of fits; angle percentiles alpha and\n"
          "100 - alpha; haematoxylin is the vector with the larger red OD; 99th percentile concentrations).\n"
          "method = \"reinhard\": per-channel mean and standard deviation matching in CIELAB (float, D65, from sRGB),\n"
          "statistics over the stained pixels (the same OD test), applied to every pixel.\n"
          "fit = \"tile\": the source is fitted on each tile; a tile with fewer stained pixels than\n"
          "min_stained_fraction (at least 10) passes unchanged. fit = \"slide\": the source is fitted once per slide\n"
          "(the tile's 'path' attribute, as tile_reader emits) on the tissue of its thumbnail (slide_fit_width wide,\n"
          "saturation + Otsu mask), and every tile of the slide, background ones included, uses that fit; a slide\n"
          "whose tissue cannot be fitted makes each of its tiles an error record. Outputs are rounded and clamped,\n"
          "never NaN. Attributes and provenance are kept. The reference file's SHA-256 is part of the lineage.\n"
          "reference_fit = \"slide\": the reference is a whole-slide file, fitted on its tissue as fit = \"slide\"\n"
          "fits a source slide (a reference slide of the cohort rather than one tile).";
  c.inputs = {{"tiles", kTileKind, "uint8 [H, W, 3] RGB tiles (tile_reader, patch_folder)"}};
  c.outputs = {{"tiles", kTileKind, "the normalised tiles, same shape and attributes"}};
  c.params = {param_string("method", "macenko", "Stain normalisation method", {"macenko", "reinhard"}),
              param_required("reference", ParamType::Path, "Reference whose stains the tiles are given: an image (PNG, JPEG, TIFF), or a whole-slide file with reference_fit = \"slide\""),
              param_string("reference_fit", "image",
                           "How the reference is read: every pixel of an image, or the tissue of a whole-slide file",
                           {"image", "slide"}),
              param_string("fit", "tile", "Where source stains are estimated: each tile, or once per slide on its tissue",
                           {"tile", "slide"}),
              param_float("light_intensity", 240.0, "Io of the optical density -ln((I + 1) / Io): the brightness of glass", 1, 255),
              param_float("beta", 0.15, "Optical density below which (in any channel) a pixel is background", 0, 3),
              param_float("alpha", 1.0, "Macenko: percentile (and 100 - alpha) of the angles giving the stain vectors", 0, 25),
              param_float("min_stained_fraction", 0.05, "Fewest stained pixels (fraction of the image) a fit needs", 0, 1),
              param_int("slide_fit_width", 1024, "fit = \"slide\": width of the thumbnail the slide's fit is made on", 64, 16384)};
  c.rules = {rule_file_exists("reference")};
  c.concurrency = Concurrency::Unlimited;
  c.cardinality = Cardinality::OneToOne;
  c.example = "[stage.stains]\nuse = \"stain_normalize\"\ninput = \"read\"\nmethod = \"macenko\"\n"
              "reference = \"reference_tile.png\"\nfit = \"slide\"\n";
  register_stage<StainNormalize>(registry, std::move(c));
}

}  // namespace histoflow::slides
