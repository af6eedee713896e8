// The cohort source: one packet per slide of a manifest, every manifest problem reported before any work.
#include <numeric>

#include "histoflow/stage.hpp"
#include "histoflow/slides/manifest.hpp"
#include "histoflow/slides/manifest_params.hpp"
#include "shard_assignment.hpp"
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
    rows_.resize(manifest_.slides.size());
    std::iota(rows_.begin(), rows_.end(), std::size_t{0});
    if (context_.shard.split()) take_shard();
  }

  std::int64_t size_hint() const override { return static_cast<std::int64_t>(rows_.size()); }

  std::vector<std::string> shard_items() const override {
    std::vector<std::string> ids;
    for (const std::size_t row : rows_) ids.push_back(manifest_.slides[row].id);
    return ids;
  }

  bool generate(Emitter& out) override {
    if (next_ >= rows_.size()) return false;
    const std::size_t index = rows_[next_++];  // advanced first: a slide that throws is recorded and passed over
    const SlideEntry& slide = manifest_.slides[index];
    Packet packet;
    packet.kind = kSlideKind;
    packet.provenance.item_id = slide.id;
    packet.provenance.sequence = index;  // the manifest row, as in a run of the whole cohort
    packet.attributes = slide_attributes(slide);
    // What cached results (tile grids, feature files) are keyed by; an unreadable file is an error record.
    packet.attributes["slide_fingerprint"] = slide_fingerprint(slide.path);
    if (slide.mpp) packet.attributes["mpp"] = *slide.mpp;
    out.emit(std::move(packet));
    return next_ < rows_.size();
  }

 private:
  // Keeps this shard's rows, in manifest order; the shards split the cohort by size (shard_assignment.hpp).
  void take_shard() {
    std::vector<ShardedItem> items;
    for (const auto& slide : manifest_.slides) items.push_back({slide.id, slide.path.empty() ? 0 : slide_bytes(slide.path)});
    const auto shard_of = assign_shards(items, context_.shard.count);
    std::vector<std::size_t> mine;
    for (const std::size_t row : rows_)
      if (shard_of[row] == context_.shard.index) mine.push_back(row);
    rows_ = std::move(mine);
  }

  StageContext context_;
  std::string file_;
  ManifestOptions options_;
  Manifest manifest_;
  std::vector<std::size_t> rows_;  // the manifest rows this run emits: all, or its shard's
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
          "(SHA-256 of the file's size and first and last MiB: the identity cached results are keyed by).\n"
          "Shardable (flowrun run --shard I/N, a Slurm array task): shard I takes its part of the manifest, balanced\n"
          "by file size (largest first, each to the shard with the fewest bytes so far; the same for the same cohort),\n"
          "in manifest order. docs/scale-out.md.";
  c.outputs = {{"slides", kSlideKind, "one packet per slide"}};
  // Only the mpp column changes what is computed from a slide; the slide itself is keyed by its fingerprint.
  c.params = manifest_params({"label"});
  c.rules = {rule_file_exists("manifest")};
  c.shardable = true;
  c.example = "[stage.slides]\nuse = \"slide_source\"\nmanifest = \"data/tcga_crc.csv\"\nlabel_columns = [\"msi\"]\n";
  register_stage<SlideSource>(registry, std::move(c));
}

}  // namespace histoflow::slides
