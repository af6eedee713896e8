// feature_export: the store's slide files rewritten where CLAM's and TRIDENT's own code looks for them, with
// the coordinate attributes in each tool's meaning (docs/features.md).
#include <atomic>

#include "feature_stages.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/features/feature_layouts.hpp"
#include "histoflow/stage.hpp"

namespace histoflow::features {
namespace {

class FeatureExport final : public Stage {
 public:
  explicit FeatureExport(const StageContext& context)
      : layout_(parse_feature_layout(context.params.get_string("layout"))) {
    const Params& p = context.params;
    root_ = p.has("root") && !p.get_string("root").empty() ? std::filesystem::path(p.get_string("root"))
                                                          : context.experiment.output_dir / "export" / layout_name(layout_);
  }

  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    const Packet& file = *input;
    const std::string& content = file.require<std::string>("content");
    if (content != "slide")
      throw std::invalid_argument("feature_export takes slide files (slide_store, feature_reader); '" +
                                  file.require<std::string>("path") + "' is a " + content + " file");
    const std::string& slide_id = file.require<std::string>("slide_id");
    // The tiling geometry each tool's attributes are derived from is in a store's files only.
    if (const auto* format = file.attribute<std::string>("format"); format && *format != "histoflow")
      throw std::invalid_argument("slide '" + slide_id + "': feature_export writes a store's files (slide_store, or feature_reader "
                                  "with layout = \"histoflow\"); '" + file.require<std::string>("path") + "' is another tool's (" +
                                  *format + "), without the tiling geometry");
    export_slide_features(layout_, root_, slide_id, read_slide_features(FeatureFileRef{file.require<std::string>("path"), "histoflow", {}}));
    ++exported_;
  }

  std::vector<StageResult> results() const override {
    if (exported_.load() == 0) return {};
    return {{layout_name(layout_) + " layout (" + std::to_string(exported_.load()) + " slides)", std::filesystem::absolute(root_)}};
  }

 private:
  FeatureLayout layout_;
  std::filesystem::path root_;
  std::atomic<std::int64_t> exported_{0};
};

}  // namespace

void register_feature_export(Registry& registry) {
  StageContract c;
  c.type = "feature_export";
  c.summary = "Writes slide feature files in CLAM's or TRIDENT's layout, where their code reads them";
  c.doc = "Each incoming store file (slide_store's, or feature_reader's with layout = \"histoflow\") is written again\n"
          "under `root` (other tools' files lack the tiling geometry and are refused, naming the file):\n"
          "  clam     h5_files/<slide>.h5 (features float32 [N, D], coords int64 [N, 2]), pt_files/<slide>.pt\n"
          "           (torch.save of the features) and patches/<slide>.h5 (coords); coords attributes patch_size =\n"
          "           pixels read at patch_level, the region CLAM's Whole_Slide_Bag_FP reads for each coordinate\n"
          "  trident  <mag>x_<size>px_<overlap>px_overlap/features_<encoder>/<slide>.h5 and patches/<slide>_patches.h5;\n"
          "           coords attributes patch_size (at target_magnification), patch_size_level0,\n"
          "           level0_magnification (the slide's objective power, else TRIDENT's mpp convention),\n"
          "           target_magnification, overlap, level0_width, level0_height; features attribute encoder\n"
          "Coordinates are level-0 pixels, as in both tools. Every file is written to a temporary name and renamed;\n"
          "a rerun rewrites them (cheap: no slide is read).";
  c.inputs = {{"files", kFeatureFileKind, "slide feature files (slide_store, or feature_reader of a store folder)"}};
  ParamSpec layout = param_required("layout", ParamType::String, "The tool whose layout is written");
  layout.choices = {"clam", "trident"};
  c.params = {layout, not_affecting_output(param_path("root", "Folder to write into; unset: <experiment output>/export/<layout>"))};
  c.example = "[stage.export]\nuse = \"feature_export\"\ninput = \"store\"\nlayout = \"clam\"\nroot = \"/data/clam_features\"\n";
  register_stage<FeatureExport>(registry, std::move(c));
}

}  // namespace histoflow::features
