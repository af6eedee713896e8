// patch_store: the rows of a labelled patch dataset (patch_folder → encoder) in one HDF5 file, written at end
// of stream in source order, with each patch's label, class and path; restored whole on a rerun.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>

#include "feature_stages.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/sealed_file.hpp"
#include "store_files.hpp"

namespace histoflow::features {
namespace {

constexpr const char* kContent = "patches";

struct PatchRow {
  std::uint64_t sequence;
  std::string path;
  std::int64_t label;
  std::vector<float> values;
};

class PatchStore final : public Stage {
 public:
  explicit PatchStore(const StageContext& context) : store_(context) {
    const std::string dataset = context.params.get_string("dataset");
    dataset_ = dataset.empty() ? context.stage_id : dataset;
  }

  void set_lineage(const std::string& lineage) override { store_.set_lineage(lineage); }

  // Checked once per run; a file that fails verification is reported once (with the first patch) and rewritten.
  bool restore(const Packet&, Emitter&) override {
    std::string problem;
    std::call_once(checked_, [&] {
      const auto file = dataset_file();
      if (!std::filesystem::exists(file)) return;
      if (store_.verify_existing) problem = verify_sealed_file(file);
      if (!problem.empty()) problem = "'" + file.string() + "': " + problem;
      restored_ = problem.empty();
    });
    if (!problem.empty()) throw std::runtime_error(problem);
    return restored_;
  }

  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    const Packet& batch = *input;
    const std::int64_t dim = feature_width(batch);
    encoder_.check(batch, dim);
    if (batch.row_attributes.size() != batch.rows.size())
      throw std::invalid_argument("patch_store needs each row's label, class and path "
                                  "(the encoder keeps them; see its row_attributes parameter)");
    const float* data = batch.tensor.data<float>();
    for (std::size_t i = 0; i < batch.rows.size(); ++i) {
      const auto& attributes = batch.row_attributes[i];
      const auto get = [&](const std::string& key) -> const Attribute& {
        auto it = attributes.find(key);
        if (it == attributes.end())
          throw std::invalid_argument("patch '" + batch.rows[i].item_id + "' has no '" + key + "' attribute");
        return it->second;
      };
      const auto label = std::get<std::int64_t>(get("label"));
      const auto& name = std::get<std::string>(get("class"));
      if (label < 0) throw std::invalid_argument("patch '" + batch.rows[i].item_id + "': negative label");
      if (static_cast<std::size_t>(label) >= class_names_.size()) class_names_.resize(static_cast<std::size_t>(label) + 1);
      auto& known = class_names_[static_cast<std::size_t>(label)];
      if (!known.empty() && known != name)
        throw std::invalid_argument("label " + std::to_string(label) + " is class '" + known + "' and '" + name + "'");
      known = name;
      rows_.push_back({batch.rows[i].sequence, std::get<std::string>(get("path")), label,
                       std::vector<float>(data + static_cast<std::int64_t>(i) * dim, data + static_cast<std::int64_t>(i + 1) * dim)});
    }
  }

  void flush(Emitter& out) override {
    const auto file = dataset_file();
    Provenance provenance;
    provenance.item_id = dataset_;
    if (rows_.empty()) {
      if (restored_) out.emit(feature_file_packet(provenance, {}, read_feature_attributes(file), file, kContent));
      return;
    }
    std::sort(rows_.begin(), rows_.end(), [](const PatchRow& a, const PatchRow& b) { return a.sequence < b.sequence; });
    PatchFeatures content;
    content.features.rows = static_cast<std::int64_t>(rows_.size());
    content.features.dim = encoder_.dim();
    content.features.values.reserve(rows_.size() * static_cast<std::size_t>(encoder_.dim()));
    for (auto& row : rows_) {
      content.features.values.insert(content.features.values.end(), row.values.begin(), row.values.end());
      content.labels.push_back(row.label);
      content.paths.push_back(row.path);
    }
    rows_.clear();
    for (std::size_t i = 0; i < class_names_.size(); ++i)
      content.class_names.push_back(class_names_[i].empty() ? "class_" + std::to_string(i) : class_names_[i]);
    content.attributes = encoder_.attributes();
    content.attributes["dataset"] = dataset_;
    add_file_attributes(content.attributes, content.features.rows, content.features.dim, store_);
    nlohmann::json identity{{"lineage", store_.lineage}, {"dataset", dataset_}, {"content", kContent}};
    write_patch_features(file, content, store_.storage, identity.dump());
    written_ = true;
    out.emit(feature_file_packet(provenance, {}, content.attributes, file, kContent));
  }

  // The dataset file, when this run wrote it (a run that only restored it names none).
  std::vector<StageResult> results() const override {
    if (!written_) return {};
    return {{"feature file (dataset '" + dataset_ + "')", std::filesystem::absolute(dataset_file())}};
  }

 private:
  std::filesystem::path dataset_file() const { return store_.folder / cache_file_name(dataset_, "", ".h5"); }

  StoreFolder store_;
  EncoderIdentity encoder_;
  std::string dataset_;
  std::vector<std::string> class_names_;
  std::vector<PatchRow> rows_;
  std::once_flag checked_;
  bool restored_ = false;
  std::atomic<bool> written_{false};
};

}  // namespace

void register_patch_store(Registry& registry) {
  StageContract c;
  c.type = "patch_store";
  c.summary = "Writes a labelled patch dataset's features to one HDF5 file; resumable";
  c.doc = "At end of stream, <root>/<lineage>/<dataset>.h5 holds /features [N, D] in source order, /labels,\n"
          "/paths and the class_names attribute (what knn_eval and linear_probe read). <lineage> is the SHA-256 of\n"
          "everything upstream that determines the features, so a changed encoder writes elsewhere; a complete\n"
          "file (checksum verified) is restored on a rerun and its patches are neither read nor encoded again.\n"
          "One store takes one encoder: rows of a second encoder (even of the same width) stop the run.\n"
          "Emits one feature_file packet (content \"patches\", attribute dataset). Slides go to slide_store.";
  c.inputs = {{"features", kinds::kFeatures, "feature rows of patches with label, class and path (torch_encoder)"}};
  PortSpec files{"files", kFeatureFileKind, "one packet for the dataset's file: path, dataset, encoder, rows, dim"};
  files.may_be_unused = true;
  c.outputs = {files};
  c.params = store_params();
  c.params.push_back(param_string("dataset", "", "Name of the dataset's file (train, test, ...); empty: the stage id"));
  c.resumable = true;
  c.example = "[stage.store_train]\nuse = \"patch_store\"\ninput = \"encode_train\"\ndataset = \"train\"\n";
  c.needs_every_item = true;  // one file of the whole dataset
  register_stage<PatchStore>(registry, std::move(c));
}

}  // namespace histoflow::features
