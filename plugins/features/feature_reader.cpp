// feature_reader: a cohort whose features already exist (CLAM, TRIDENT or an earlier histoflow store) read
// against a manifest, so that mil_cv and the comparison table run on them without a slide being read.
#include <map>

#include "feature_stages.hpp"
#include "histoflow/errors.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/features/feature_layouts.hpp"
#include "histoflow/slides/manifest_params.hpp"
#include "histoflow/stage.hpp"
#include "store_files.hpp"

namespace histoflow::features {
namespace {

namespace fs = std::filesystem;

// What the layout's name suggests the encoder was: TRIDENT's features_<encoder> folder, else nothing.
std::string encoder_from_folder(FeatureLayout layout, const fs::path& root) {
  const std::string name = root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  if (layout == FeatureLayout::Trident && name.rfind("features_", 0) == 0) return name.substr(9);
  return "";
}

class FeatureReader final : public Stage {
 public:
  explicit FeatureReader(const StageContext& context)
      : context_(context),
        manifest_file_(context.params.get_string("manifest")),
        root_(context.params.get_string("root")),
        layout_(parse_feature_layout(context.params.get_string("layout"))),
        encoder_(context.params.get_string("encoder")),
        dim_(context.params.get_int("dim")),
        require_coords_(context.params.get_bool("require_coords")) {
    options_ = slides::manifest_options(context.params);
    options_.require_slide_files = false;  // the slides themselves are not needed; a slide path is kept when given
    if (encoder_.empty()) encoder_ = encoder_from_folder(layout_, root_);
  }

  void open() override {
    std::error_code ec;
    if (!fs::is_directory(root_, ec)) throw FatalError("feature folder '" + root_.string() + "' does not exist");
    folder_.emplace(layout_, root_);
    manifest_ = slides::load_manifest(manifest_file_, options_);
    // A wrong root or layout would otherwise fail every slide one by one.
    std::size_t found = 0;
    for (const auto& slide : manifest_.slides) {
      try {
        found += folder_->find(slide.id).has_value();
      } catch (const std::exception&) {
        ++found;  // two files for one id: that slide's own error, in generate()
      }
    }
    if (found == 0 && !manifest_.slides.empty())
      throw FatalError("no feature file of the manifest's " + std::to_string(manifest_.slides.size()) + " slides is in '" +
                       root_.string() + "' (layout " + layout_name(layout_) + "; for slide '" + manifest_.slides[0].id +
                       "' it looked for " + folder_->where_it_looks(manifest_.slides[0].id) + ")");
  }

  std::int64_t size_hint() const override { return static_cast<std::int64_t>(manifest_.slides.size()); }

  bool generate(Emitter& out) override {
    while (next_ < manifest_.slides.size()) {
      const std::size_t index = next_++;
      const slides::SlideEntry& slide = manifest_.slides[index];
      try {
        out.emit(read(slide, index));
        return next_ < manifest_.slides.size();
      } catch (const std::exception& e) {
        context_.errors->add({context_.stage_id, slide.id, index, e.what()});  // that slide only
      }
    }
    return false;
  }

 private:
  Packet read(const slides::SlideEntry& slide, std::size_t index) {
    const auto ref = folder_->find(slide.id);
    if (!ref) throw std::runtime_error("slide '" + slide.id + "': no feature file (looked for " + folder_->where_it_looks(slide.id) + ")");
    FeatureFileShape content;
    try {
      content = read_feature_shape(*ref);
    } catch (const std::exception& e) {
      throw std::runtime_error("slide '" + slide.id + "': " + e.what());
    }
    const std::int64_t rows = content.rows, dim = content.dim;
    if (rows == 0) throw std::runtime_error("slide '" + slide.id + "': '" + ref->file.string() + "' holds no feature rows");
    // A store's file names its slide: ids that the store's file names spell alike must not share a file.
    if (const auto it = content.attributes.find("slide_id"); ref->format == "histoflow" && it != content.attributes.end())
      if (const auto* stored = std::get_if<std::string>(&it->second); stored && *stored != slide.id)
        throw std::runtime_error("slide '" + slide.id + "': '" + ref->file.string() + "' holds slide '" + *stored + "'");
    if (require_coords_ && !content.has_coords)
      throw std::runtime_error("slide '" + slide.id + "': '" + ref->file.string() + "' has no coordinates" +
                               (ref->format == "pt" ? " (a .pt file holds features only, and no coordinates file was found beside it)" : "") +
                               "; set require_coords = false to use it without them (no heatmaps)");
    if (dim_ == 0) dim_ = dim, first_ = ref->file.string();
    if (dim != dim_)
      throw std::runtime_error("slide '" + slide.id + "': '" + ref->file.string() + "' has " + std::to_string(dim) +
                               " features per row, " + (first_.empty() ? "the dim parameter says " + std::to_string(dim_)
                                                                        : "'" + first_ + "' has " + std::to_string(dim_)));
    Provenance provenance;
    provenance.item_id = slide.id;
    provenance.sequence = index;
    AttributeMap stored = content.attributes;  // the packet takes the encoder's identity from it
    stored["encoder"] = encoder_for(content);
    stored["rows"] = rows;
    stored["dim"] = dim;
    Packet packet = feature_file_packet(provenance, slides::slide_attributes(slide), stored, ref->file, "slide");
    packet.attributes["format"] = ref->format;
    if (!ref->coords_file.empty()) packet.attributes["coords_path"] = fs::absolute(ref->coords_file).string();
    return packet;
  }

  // The parameter, else what the file says (histoflow's root attribute, TRIDENT's features attribute), else "features".
  std::string encoder_for(const FeatureFileShape& content) const {
    if (!encoder_.empty()) return encoder_;
    for (const AttributeMap* attributes : {&content.attributes, &content.features_attributes})
      if (auto it = attributes->find("encoder"); it != attributes->end())
        if (const auto* text = std::get_if<std::string>(&it->second); text && !text->empty()) return *text;
    return "features";
  }

  StageContext context_;
  fs::path manifest_file_, root_;
  FeatureLayout layout_;
  std::string encoder_;
  std::int64_t dim_;
  bool require_coords_;
  slides::ManifestOptions options_;
  slides::Manifest manifest_;
  std::optional<FeatureFolder> folder_;  // listed at open
  std::size_t next_ = 0;  // generate() runs on one thread at a time
  std::string first_;     // the file that set the width
};

}  // namespace

void register_feature_reader(Registry& registry) {
  StageContract c;
  c.type = "feature_reader";
  c.summary = "Reads existing per-slide feature files (CLAM, TRIDENT, histoflow) for the slides of a manifest";
  c.doc = "For each slide of the manifest, finds its feature file under `root` in the given layout and emits a\n"
          "feature_file packet (with the manifest's patient, cohort and labels) that mil_cv takes as it takes a\n"
          "slide_store's:\n"
          "  clam       root/h5_files/<slide>.h5 (features, coords), else root/pt_files/<slide>.pt (features only;\n"
          "             coordinates from root/patches/<slide>.h5 when present)\n"
          "  trident    root/<slide>.h5 or .pt, root being TRIDENT's features_<encoder> folder\n"
          "  histoflow  root/<slide>-<fingerprint>.h5, root being one of slide_store's lineage folders\n"
          "Each file's shape is checked here (HDF5 metadata; a .pt file is read whole): a missing file, an\n"
          "unreadable one, one without rows, one whose width differs from the first file's (or from `dim`),\n"
          "one without coordinates (unless require_coords = false), or two histoflow files for one id fails that\n"
          "slide with a recorded error naming the file; the other slides go on. A manifest none of whose\n"
          "slides has a file stops the run before any work (wrong root or layout). Slide files need not exist;\n"
          "with an id_column (CLAM's CSVs: slide_id) the manifest needs no slide column at all.";
  c.outputs = {{"files", kFeatureFileKind, "one packet per slide whose features were read"}};
  c.params = slides::manifest_params({"label"});
  c.params.push_back(param_required("root", ParamType::Path, "Folder holding the feature files (see the layouts above)"));
  ParamSpec layout = param_required("layout", ParamType::String, "Where and how the files are laid out");
  layout.choices = {"clam", "trident", "histoflow"};
  c.params.push_back(layout);
  c.params.push_back(param_string("encoder", "", "Name of the features in tables; empty: the files' encoder attribute, "
                                                 "TRIDENT's folder name, else \"features\""));
  c.params.push_back(param_int("dim", 0, "Expected features per row; 0: the first file's width", 0));
  c.params.push_back(param_bool("require_coords", true, "Fail slides whose files have no tile coordinates"));
  c.rules = {rule_file_exists("manifest")};
  c.example = "[stage.features]\nuse = \"feature_reader\"\nmanifest = \"cohort.csv\"\nid_column = \"slide_id\"\n"
              "root = \"/data/clam_features\"\nlayout = \"clam\"\n";
  register_stage<FeatureReader>(registry, std::move(c));
}

}  // namespace histoflow::features
