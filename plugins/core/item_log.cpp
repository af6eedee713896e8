// Records the packets it receives, in the order received, one line each. Its input is ordered, so the
// log lists items in source order whatever the parallelism upstream.
#include "core_stages.hpp"
#include "histoflow/atomic_file.hpp"

namespace histoflow::core {
namespace {

class ItemLog final : public Stage {
 public:
  explicit ItemLog(const StageContext& context)
      : path_(context.experiment.output_dir / context.params.get_string("file")), file_(path_) {}

  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    file_.stream() << input->provenance.sequence << '\t' << input->provenance.item_id << '\t' << input->kind << '\n';
  }
  void flush(Emitter&) override {
    file_.commit();
    written_ = true;
  }

  std::vector<StageResult> results() const override {
    if (!written_) return {};
    return {{"item log", std::filesystem::absolute(path_)}};
  }

 private:
  std::filesystem::path path_;
  AtomicFile file_;  // an interrupted run leaves no log that looks complete
  bool written_ = false;
};

}  // namespace

void register_item_log(Registry& registry) {
  StageContract c;
  c.type = "item_log";
  c.summary = "Writes one line per packet (sequence, item id, kind) in source order";
  c.inputs = {{"items", kAnyKind, "packets of any kind", /*ordered=*/true}};
  c.params = {param_string("file", "items.tsv", "File name, relative to the experiment output folder")};
  c.example = "[stage.log]\nuse = \"item_log\"\ninput = \"tiles\"\n";
  c.needs_every_item = true;  // one file of every item
  register_stage<ItemLog>(registry, std::move(c));
}

}  // namespace histoflow::core
