// The cohort source: one packet per slide of a manifest, every manifest problem reported before any work.
#include "histoflow/stage.hpp"
#include "histoflow/slides/manifest.hpp"
#include "histoflow/slides/manifest_params.hpp"
#include "slide_fingerprint.hpp"
#include "slide_stages.hpp"

namespace histoflow::slides {
namespace {

class SlideSource final : public Stage {
 public:
  explicit SlideSource(const StageContext& context) : context_(context) {
    const Params& p = context.params;
    file_ = p.get_string("manifest");
    options_ = manifest_options(p);
  }

  void open() override {
    manifest_ = load_manifest(file_, options_);
    for (const auto& skipped : manifest_.skipped)
      context_.errors->add({context_.stage_id, "", 0, "skipped (on_missing = \"skip\"): " + skipped});
  }

  std::int64_t size_hint() const override { return static_cast<std::int64_t>(manifest_.slides.size()); }

  bool generate(Emitter& out) override {
    if (next_ >= manifest_.slides.size()) return false;
    const std::size_t index = next_++;  // advanced first: a slide that throws is recorded and passed over
    const SlideEntry& slide = manifest_.slides[index];
    Packet packet;
    packet.kind = kSlideKind;
    packet.provenance.item_id = slide.id;
    packet.provenance.sequence = index;
    packet.attributes = slide_attributes(slide);
    // What cached results (tile grids, feature files) are keyed by; an unreadable file is an error record.
    packet.attributes["slide_fingerprint"] = slide_fingerprint(slide.path);
    if (slide.mpp) packet.attributes["mpp"] = *slide.mpp;
    out.emit(std::move(packet));
    return next_ < manifest_.slides.size();
  }

 private:
  StageContext context_;
  std::string file_;
  ManifestOptions options_;
  Manifest manifest_;
  std::size_t next_ = 0;
};

}  // namespace

void register_slide_source(Registry& registry) {
  StageContract c;
  c.type = "slide_source";
  c.summary = "Reads a cohort manifest (CSV) and emits one packet per slide with its patient and labels";
  c.doc = "Relative slide paths resolve against the manifest's folder. Every problem in the manifest (missing\n"
          "columns, missing files, duplicate slide ids, empty labels or patients, bad mpp values) is reported at\n"
          "once when the run opens, before any slide is read. Attributes: slide_id, path, patient, cohort,\n"
          "mpp (when the manifest has an mpp column), label:<column> for each label column, and slide_fingerprint\n"
          "(SHA-256 of the file's size and first and last MiB: the identity cached results are keyed by).";
  c.outputs = {{"slides", kSlideKind, "one packet per slide"}};
  // Only the mpp column changes what is computed from a slide; the slide itself is keyed by its fingerprint.
  c.params = manifest_params({"label"});
  c.rules = {rule_file_exists("manifest")};
  c.example = "[stage.slides]\nuse = \"slide_source\"\nmanifest = \"data/tcga_crc.csv\"\nlabel_columns = [\"msi\"]\n";
  register_stage<SlideSource>(registry, std::move(c));
}

}  // namespace histoflow::slides
