// patch_feature_reader: a labelled patch dataset whose features another tool computed, for knn_eval and
// linear_probe. The file is checked and written once as a patch_store file, so the evaluations read it as
// they read their own (verified, with class names and paths).
#include "feature_stages.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/features/feature_layouts.hpp"
#include "histoflow/stage.hpp"
#include "store_files.hpp"

namespace histoflow::features {
namespace {

namespace fs = std::filesystem;

std::string format_of(const fs::path& file) {
  const std::string extension = file.extension().string();
  if (extension == ".pt" || extension == ".pth") return "pt";
  return "h5";
}

class PatchFeatureReader final : public Stage {
 public:
  explicit PatchFeatureReader(const StageContext& context)
      : context_(context),
        source_(context.params.get_string("file")),
        dataset_(context.params.get_string("dataset")),
        encoder_(context.params.get_string("encoder")),
        class_names_(context.params.get_list("class_names")) {
    target_ = context.experiment.output_dir / context.stage_id / (dataset_ + ".h5");
  }

  // Every problem of the file stops the run here, before any work: one file is the whole dataset.
  void open() override {
    PatchFeatures content;
    try {
      content = read_patch_features(FeatureFileRef{source_, format_of(source_), {}}, class_names_);
    } catch (const std::exception& e) {
      throw FatalError("patch features '" + source_.string() + "': " + e.what());
    }
    if (content.features.rows == 0) throw FatalError("patch features '" + source_.string() + "' hold no rows");
    if (encoder_.empty()) {
      const auto it = content.attributes.find("encoder");
      const auto* named = it == content.attributes.end() ? nullptr : std::get_if<std::string>(&it->second);
      encoder_ = named && !named->empty() ? *named : source_.stem().string();
    }
    content.attributes["encoder"] = encoder_;
    content.attributes["dataset"] = dataset_;
    content.attributes["source_file"] = fs::absolute(source_).string();
    content.attributes["rows"] = content.features.rows;
    content.attributes["dim"] = content.features.dim;
    write_patch_features(target_, content, StorageType::Float32);
    rows_ = content.features.rows;
    dim_ = content.features.dim;
  }

  bool generate(Emitter& out) override {
    Provenance provenance;
    provenance.item_id = dataset_;
    out.emit(feature_file_packet(provenance, {}, {{"dataset", dataset_}, {"encoder", encoder_}, {"rows", rows_}, {"dim", dim_}},
                                 target_, "patches"));
    return false;
  }

  std::vector<StageResult> results() const override { return {{"patch features", fs::absolute(target_)}}; }

 private:
  StageContext context_;
  fs::path source_, target_;
  std::string dataset_, encoder_;
  std::vector<std::string> class_names_;
  std::int64_t rows_ = 0, dim_ = 0;
};

}  // namespace

void register_patch_feature_reader(Registry& registry) {
  StageContract c;
  c.type = "patch_feature_reader";
  c.summary = "Reads a labelled patch dataset's features computed by another tool, for knn_eval and linear_probe";
  c.doc = "`file` is HDF5 (/features [N, D], /labels [N] integers; /paths and a class_names attribute when it has\n"
          "them; patch_store's files too) or a torch.save'd dict (.pt/.pth) {features | embeddings | feats: [N, D],\n"
          "labels | targets: [N]}. Class names: the file's, else `class_names` (index = label), else the label\n"
          "numbers. Any problem (unreadable file, labels without a name, rows that disagree) stops the run before\n"
          "any work. The dataset is written once as a patch_store file (<output>/<stage>/<dataset>.h5), which the\n"
          "evaluations read as their own; one packet is emitted (content \"patches\", `dataset`).";
  c.outputs = {{"files", kFeatureFileKind, "the dataset's feature file"}};
  c.params = {param_required("file", ParamType::Path, "The features file (.h5, or .pt/.pth)"),
              param_string("dataset", "train", "The dataset's name: knn_eval's train_dataset or test_dataset"),
              param_string("encoder", "", "Name of the features in tables; empty: the file's encoder attribute, else its name"),
              param_string_list("class_names", {}, "Class names in label order, for files that have none")};
  c.rules = {rule_file_exists("file")};
  c.example = "[stage.train]\nuse = \"patch_feature_reader\"\nfile = \"/data/uni/nct_crc_train.h5\"\ndataset = \"train\"\n"
              "encoder = \"uni\"\n";
  register_stage<PatchFeatureReader>(registry, std::move(c));
}

}  // namespace histoflow::features
