// The cohort source: one packet per slide of a manifest, every manifest problem reported before any work.
#include "histoflow/stage.hpp"
#include "manifest.hpp"
#include "slide_fingerprint.hpp"
#include "slide_stages.hpp"

namespace histoflow::slides {
namespace {

char delimiter_of(const std::string& text) {
  if (text == "tab" || text == "\\t" || text == "\t") return '\t';
  if (text.size() != 1) throw std::invalid_argument("delimiter must be one character or \"tab\", got '" + text + "'");
  return text[0];
}

class SlideSource final : public Stage {
 public:
  explicit SlideSource(const StageContext& context) : context_(context) {
    const Params& p = context.params;
    file_ = p.get_string("manifest");
    options_.slide_column = p.get_string("slide_column");
    options_.id_column = p.get_string("id_column");
    options_.patient_column = p.get_string("patient_column");
    options_.label_columns = p.get_list("label_columns");
    options_.cohort_column = p.get_string("cohort_column");
    options_.mpp_column = p.get_string("mpp_column");
    options_.delimiter = delimiter_of(p.get_string("delimiter"));
    options_.skip_missing = p.get_string("on_missing") == "skip";
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
    packet.attributes["slide_id"] = slide.id;
    packet.attributes["path"] = slide.path.string();
    // What cached results (tile grids, feature files) are keyed by; an unreadable file is an error record.
    packet.attributes["slide_fingerprint"] = slide_fingerprint(slide.path);
    packet.attributes["patient"] = slide.patient;
    if (!slide.cohort.empty()) packet.attributes["cohort"] = slide.cohort;
    if (slide.mpp) packet.attributes["mpp"] = *slide.mpp;
    for (const auto& [column, value] : slide.labels) packet.attributes["label:" + column] = value;
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
  c.params = {not_affecting_output(param_required("manifest", ParamType::Path, "Cohort manifest CSV")),
              not_affecting_output(param_string("slide_column", "slide", "Column with the slide file path")),
              not_affecting_output(param_string("id_column", "", "Column with the slide id; empty: the file name without extension")),
              not_affecting_output(param_string("patient_column", "patient", "Column with the patient id; empty: one patient per slide")),
              not_affecting_output(param_string_list("label_columns", {"label"}, "Label columns (each must be non-empty)")),
              not_affecting_output(param_string("cohort_column", "", "Optional column naming the cohort or split")),
              param_string("mpp_column", "", "Optional column with microns per pixel, overriding the slide's own"),
              not_affecting_output(param_string("delimiter", ",", "Field delimiter: one character, or \"tab\"")),
              not_affecting_output(param_string("on_missing", "error", "A slide file that does not exist: fail the run, or skip it (recorded)",
                           {"error", "skip"}))};
  c.rules = {rule_file_exists("manifest")};
  c.example = "[stage.slides]\nuse = \"slide_source\"\nmanifest = \"data/tcga_crc.csv\"\nlabel_columns = [\"msi\"]\n";
  register_stage<SlideSource>(registry, std::move(c));
}

}  // namespace histoflow::slides
