// Patch datasets: the class-per-folder layout of NCT-CRC-HE-100K and CRC-VAL-HE-7K, or a CSV of path and
// label. Class indices are stable (sorted class names, or the order given) and written to the output folder.
// Read once in order (evaluation, feature extraction) or as an endless stream of seeded shuffled epochs
// (training), where a sample's image depends only on the seed and its position in the stream.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "histoflow/atomic_file.hpp"
#include "histoflow/slides/resample.hpp"
#include "histoflow/stage.hpp"
#include "histoflow/slides/image_decode.hpp"
#include "histoflow/slides/patch_dataset.hpp"
#include "slide_stages.hpp"

namespace histoflow::slides {
namespace {

class PatchFolder final : public Stage {
 public:
  explicit PatchFolder(const StageContext& context) : context_(context) {
    const Params& p = context.params;
    if (p.has("root")) source_.root = p.get_string("root");
    if (p.has("csv")) source_.csv = p.get_string("csv");
    source_.path_column = p.get_string("path_column");
    source_.label_column = p.get_string("label_column");
    source_.extensions.clear();
    for (const auto& e : p.get_list("extensions")) source_.extensions.insert(e);
    source_.classes = p.get_list("classes");
    size_ = p.get_int("size");
    shuffled_ = p.get_string("sampling") == "shuffled";
    samples_ = p.get_int("samples");
    seed_ = p.get_int("seed") >= 0 ? static_cast<std::uint64_t>(p.get_int("seed")) : context.experiment.seed;
  }

  void open() override {
    ensure_vips();
    dataset_ = list_patch_dataset(source_);
    nlohmann::json record = {{"classes", dataset_.classes}, {"source", (source_.csv.empty() ? source_.root : source_.csv).string()},
                             {"images", dataset_.files.size()}};
    write_file_atomically(context_.experiment.output_dir / (context_.stage_id + "_classes.json"), record.dump(2) + "\n");
  }

  std::int64_t size_hint() const override {
    if (shuffled_) return samples_ > 0 ? samples_ : -1;
    return static_cast<std::int64_t>(dataset_.files.size());
  }

  bool generate(Emitter& out) override {
    const std::uint64_t index = next_++;
    if (!shuffled_ && index >= dataset_.files.size()) return false;
    if (shuffled_ && samples_ > 0 && index >= static_cast<std::uint64_t>(samples_)) return false;
    const std::size_t image_index = shuffled_ ? sampled(index) : index;
    const std::filesystem::path& file = dataset_.files[image_index];
    const std::int64_t label = dataset_.labels[image_index];
    const std::string id = file.lexically_relative(dataset_.base).string();
    RgbImage image = decode_rgb(file);  // throws: an error record for this image, then the next one
    if (size_ > 0 && (image.width != size_ || image.height != size_))
      image = resize_rgb(image, static_cast<int>(size_), static_cast<int>(size_));
    Packet patch;
    patch.kind = kTileKind;
    patch.provenance.item_id = id;
    patch.provenance.sequence = index;
    patch.provenance.tile = TileCoord{0, 0, 0, image.width};
    patch.tensor = Tensor::zeros(DType::UInt8, {image.height, image.width, 3});
    std::copy(image.pixels.begin(), image.pixels.end(), patch.tensor.data<std::uint8_t>());
    patch.attributes["label"] = label;
    patch.attributes["class"] = dataset_.classes[static_cast<std::size_t>(label)];
    patch.attributes["path"] = file.string();
    out.emit(std::move(patch));
    if (shuffled_) return samples_ <= 0 || next_ < static_cast<std::uint64_t>(samples_);
    return next_ < dataset_.files.size();
  }

 private:
  // Shuffled sampling: sample s is image order[s % n] of epoch s / n, the order a seeded shuffle per epoch.
  std::size_t sampled(std::uint64_t sample) {
    const std::uint64_t epoch = sample / dataset_.files.size();
    if (epoch != epoch_ || order_.empty()) {
      order_.resize(dataset_.files.size());
      std::iota(order_.begin(), order_.end(), std::size_t{0});
      std::mt19937_64 rng(seed_ * 0x9e3779b97f4a7c15ULL + epoch);
      for (std::size_t i = order_.size() - 1; i > 0; --i)
        std::swap(order_[i], order_[static_cast<std::size_t>(rng() % (i + 1))]);
      epoch_ = epoch;
    }
    return order_[sample % dataset_.files.size()];
  }

  StageContext context_;
  PatchDatasetSource source_;
  PatchDataset dataset_;
  std::int64_t size_;
  bool shuffled_ = false;
  std::int64_t samples_ = 0;
  std::uint64_t seed_ = 0;
  std::uint64_t next_ = 0;
  std::uint64_t epoch_ = 0;
  std::vector<std::size_t> order_;
};

}  // namespace

void register_patch_folder(Registry& registry) {
  StageContract c;
  c.type = "patch_folder";
  c.summary = "Reads a patch dataset (one folder per class, or a CSV of path and label) as labelled tiles";
  c.doc = "Images (PNG, JPEG, TIFF) are decoded with libvips to RGB, alpha flattened onto white. Class indices follow\n"
          "the sorted class names (or `classes`) and are written to <output>/<stage>_classes.json. An unreadable\n"
          "image becomes an error record for that image; the others go on. Attributes: label, class, path.\n"
          "sampling = \"shuffled\" makes it a training stream: shuffled epochs, one seeded permutation each, endless\n"
          "(samples = 0, for a trainer that ends the run itself) or `samples` long; provenance.sequence is the\n"
          "sample's position in the stream, and sample s depends on (seed, s) only, so a resumed run sees the same\n"
          "images in the same order.";
  c.outputs = {{"tiles", kTileKind, "uint8 [H, W, 3] RGB patches"}};
  c.params = {param_path("root", "Folder with one sub-folder per class"),
              param_path("csv", "CSV with a path and a label column (instead of root)"),
              param_string("path_column", "path", "CSV column with image paths (relative to the CSV)"),
              param_string("label_column", "label", "CSV column with class names"),
              param_string_list("extensions", {".png", ".jpg", ".jpeg", ".tif", ".tiff"}, "File extensions read from class folders"),
              param_string_list("classes", {}, "Class names in index order; empty: sorted names found"),
              param_int("size", 0, "Resize patches to size x size; 0: keep", 0, 4096),
              param_string("sampling", "once", "once: every image once, in sorted order; shuffled: seeded shuffled epochs", {"once", "shuffled"}),
              param_int("samples", 0, "With sampling = shuffled: stream length; 0: endless", 0),
              param_int("seed", -1, "Seed of the shuffles; -1: the experiment's seed", -1)};
  ContractRule samples_need_shuffling{"samples is set only with sampling = \"shuffled\"", [](RuleCheck& check) {
    if (std::get<std::string>(check.param("sampling")) == "once" && std::get<std::int64_t>(check.param("samples")) != 0)
      check.error("samples", "samples counts a shuffled stream: set sampling = \"shuffled\" too, or leave samples out");
  }};
  c.rules = {rule_exactly_one_of("root", "csv"), rule_file_exists("root"), rule_file_exists("csv"), samples_need_shuffling};
  c.example = "[stage.patches]\nuse = \"patch_folder\"\nroot = \"data/NCT-CRC-HE-100K\"\n";
  register_stage<PatchFolder>(registry, std::move(c));
}

}  // namespace histoflow::slides
