// The feature store: regroups feature rows per slide (batches mix slides), writes one HDF5 file per slide
// when its last tile arrives, and restores finished slides on a rerun without their pixels being read.
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "feature_file.hpp"
#include "feature_stages.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/sealed_file.hpp"
#include "histoflow/stage.hpp"
#include "histoflow/version.hpp"

namespace histoflow::features {
namespace {

constexpr std::size_t kFeaturesPort = 0, kGridPort = 1;

bool is_manifest_attribute(const std::string& key) {
  return key.rfind("label:", 0) == 0 || key == "patient" || key == "cohort" || key == "path" || key == "slide_id";
}

// One slide being assembled: rows may arrive before its grid (they travel different paths).
struct SlideAssembly {
  PacketPtr grid;
  std::unordered_map<std::uint64_t, std::int64_t> index_of;  // (x, y) -> row in the grid
  std::vector<float> values;                                 // grid rows x dim, filled as rows arrive
  std::vector<bool> filled;
  std::int64_t received = 0, dim = -1;
  AttributeMap encoder_attributes;
  std::vector<std::pair<TileCoord, std::vector<float>>> early;  // rows that came before the grid
};

std::uint64_t coord_key(std::int64_t x, std::int64_t y) {
  return (static_cast<std::uint64_t>(x) << 32) ^ static_cast<std::uint64_t>(y & 0xffffffff);
}

struct PatchRow {
  std::uint64_t sequence;
  std::string path;
  std::int64_t label;
  std::vector<float> values;
};

class FeatureStore final : public Stage {
 public:
  explicit FeatureStore(const StageContext& context) : context_(context) {
    const Params& p = context.params;
    root_ = p.has("root") && !p.get_string("root").empty() ? std::filesystem::path(p.get_string("root"))
                                                          : context.experiment.output_dir / "features";
    storage_ = p.get_string("dtype") == "float16" ? StorageType::Float16 : StorageType::Float32;
    patches_ = p.get_string("content") == "patches";
    dataset_ = p.get_string("dataset").empty() ? context.stage_id : p.get_string("dataset");
    verify_existing_ = p.get_bool("verify_existing");
  }

  void set_lineage(const std::string& lineage) override {
    lineage_ = lineage;
    folder_ = root_ / lineage.substr(0, 16);
  }

  bool restore(const Packet& item, Emitter& out) override {
    if (patches_) return restore_dataset();
    const auto* fingerprint = item.attribute<std::string>("slide_fingerprint");
    if (!fingerprint) return false;  // a source that cannot say what the slide is: always computed
    const auto file = slide_file(item.provenance.item_id, *fingerprint);
    if (!std::filesystem::exists(file)) return false;
    if (verify_existing_) {
      const std::string problem = verify_sealed_file(file);
      if (!problem.empty()) throw std::runtime_error("'" + file.string() + "': " + problem);
    }
    const AttributeMap stored = read_feature_attributes(file);
    Packet packet = file_packet(item.provenance, item.attributes, stored, file);
    out.emit(std::move(packet));
    ++restored_;
    return true;
  }

  void process(const PacketPtr& input, std::size_t port, Emitter& out) override {
    if (port == kGridPort) return add_grid(input, out);
    const Packet& batch = *input;
    const Tensor& t = batch.tensor;
    if (t.dtype() != DType::Float32 || t.shape().size() != 2 || t.shape()[0] != static_cast<std::int64_t>(batch.rows.size()))
      throw std::invalid_argument("expects float32 [rows, D] features with one provenance per row, got " +
                                  t.describe());
    const std::int64_t dim = t.shape()[1];
    const float* data = t.data<float>();
    if (patches_) return add_patch_rows(batch, data, dim);
    std::vector<std::string> completed;
    for (std::size_t i = 0; i < batch.rows.size(); ++i) {
      const Provenance& row = batch.rows[i];
      if (!row.tile) throw std::invalid_argument("row of item '" + row.item_id +
                                                 "' has no tile coordinates (content = \"slides\" needs tiles of slides)");
      SlideAssembly& slide = slides_[row.item_id];
      if (slide.dim < 0) {
        slide.dim = dim;
        for (const char* key : {"encoder", "weights_sha256", "output", "precision"})
          if (auto it = batch.attributes.find(key); it != batch.attributes.end()) slide.encoder_attributes[key] = it->second;
      } else if (slide.dim != dim) {
        throw std::invalid_argument("slide '" + row.item_id + "': rows of " + std::to_string(dim) + " and " +
                                    std::to_string(slide.dim) + " features: two encoders feed one store");
      }
      const float* values = data + static_cast<std::int64_t>(i) * dim;
      if (!slide.grid) slide.early.emplace_back(*row.tile, std::vector<float>(values, values + dim));
      else place(row.item_id, slide, *row.tile, values);
      if (slide.grid && slide.received == static_cast<std::int64_t>(slide.filled.size())) completed.push_back(row.item_id);
    }
    for (const auto& id : completed)
      if (slides_.count(id)) finish(id, out);
  }

  void flush(Emitter& out) override {
    if (patches_) return finish_dataset(out);
    for (const auto& [id, slide] : slides_) {
      const std::string message = !slide.grid
                                      ? "no tile grid arrived: connect the tiler's grid output as this stage's second input"
                                      : std::to_string(slide.received) + " of " + std::to_string(slide.filled.size()) +
                                            " tiles were encoded (the others failed upstream): no feature file written";
      context_.errors->add({context_.stage_id, id, 0, message});
    }
    slides_.clear();
  }

  // The feature folder (slides) or the dataset file, when this run wrote into it; a run that only restored
  // finished files names none (the result must be from this run).
  std::vector<StageResult> results() const override {
    const std::int64_t written = written_.load();
    if (written == 0) return {};
    if (patches_) return {{"feature file (dataset '" + dataset_ + "')", std::filesystem::absolute(dataset_file())}};
    std::string what = "feature files (" + std::to_string(written) + " written";
    if (const std::int64_t restored = restored_.load()) what += ", " + std::to_string(restored) + " restored";
    return {{what + ")", std::filesystem::absolute(folder_)}};
  }

 private:
  std::filesystem::path slide_file(const std::string& slide_id, const std::string& fingerprint) const {
    return folder_ / cache_file_name(slide_id, fingerprint, ".h5");
  }

  Packet file_packet(const Provenance& provenance, const AttributeMap& item, const AttributeMap& stored,
                     const std::filesystem::path& file) const {
    Packet packet;
    packet.kind = kFeatureFileKind;
    packet.provenance = provenance;
    packet.provenance.tile.reset();
    for (const auto& [key, value] : item)
      if (is_manifest_attribute(key)) packet.attributes[key] = value;  // labels come from this run's manifest
    if (auto it = item.find("path"); it != item.end()) packet.attributes["slide_path"] = it->second;
    for (const char* key : {"encoder", "weights_sha256", "output", "precision", "rows", "dim", "dataset"})
      if (auto it = stored.find(key); it != stored.end()) packet.attributes[key] = it->second;
    packet.attributes["content"] = std::string(patches_ ? "patches" : "slide");
    packet.attributes["path"] = std::filesystem::absolute(file).string();
    return packet;
  }

  void add_grid(const PacketPtr& grid, Emitter& out) {
    const std::string& id = grid->provenance.item_id;
    if (patches_) throw std::invalid_argument("a tile grid arrived, but content = \"patches\"");
    const Tensor& coords = grid->tensor;
    if (coords.dtype() != DType::Int64 || coords.shape().size() != 2 || coords.shape()[1] != 2)
      throw std::invalid_argument("slide '" + id + "': the grid must be int64 [N, 2], got " + coords.describe());
    SlideAssembly& slide = slides_[id];
    slide.grid = grid;
    const std::int64_t n = coords.shape()[0];
    const std::int64_t* xy = coords.data<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) slide.index_of.emplace(coord_key(xy[2 * i], xy[2 * i + 1]), i);
    slide.filled.assign(static_cast<std::size_t>(n), false);
    auto early = std::move(slide.early);
    slide.early.clear();
    for (auto& [tile, values] : early) place(id, slide, tile, values.data());
    if (slide.dim >= 0 && slide.received == n) finish(id, out);
  }

  void place(const std::string& id, SlideAssembly& slide, const TileCoord& tile, const float* values) {
    const auto it = slide.index_of.find(coord_key(tile.x, tile.y));
    if (it == slide.index_of.end())
      throw std::invalid_argument("slide '" + id + "': a feature row for tile (" + std::to_string(tile.x) + ", " +
                                  std::to_string(tile.y) + ") that is not in the slide's grid");
    if (slide.values.empty()) slide.values.assign(slide.filled.size() * static_cast<std::size_t>(slide.dim), 0.0f);
    const auto row = static_cast<std::size_t>(it->second);
    if (slide.filled[row]) throw std::invalid_argument("slide '" + id + "': tile (" + std::to_string(tile.x) + ", " +
                                                       std::to_string(tile.y) + ") was encoded twice");
    std::copy(values, values + slide.dim, slide.values.begin() + static_cast<std::ptrdiff_t>(row * slide.dim));
    slide.filled[row] = true;
    ++slide.received;
  }

  void finish(const std::string& id, Emitter& out) {
    SlideAssembly slide = std::move(slides_.at(id));
    slides_.erase(id);  // whatever happens next, this slide is done with
    const Packet& grid = *slide.grid;
    const auto* fingerprint = grid.attribute<std::string>("slide_fingerprint");
    if (!fingerprint) throw std::invalid_argument("slide '" + id + "': no slide_fingerprint attribute (from slide_source)");
    SlideFeatures content;
    content.features.rows = static_cast<std::int64_t>(slide.filled.size());
    content.features.dim = slide.dim;
    content.features.values = std::move(slide.values);
    const std::int64_t* xy = grid.tensor.data<std::int64_t>();
    content.coords.assign(xy, xy + 2 * content.features.rows);
    for (const auto& [key, value] : grid.attributes)
      if (!is_manifest_attribute(key)) content.attributes[key] = value;  // tiling parameters and slide metadata
    if (auto path = grid.attribute<std::string>("path")) content.attributes["slide_path"] = *path;
    content.attributes["slide_id"] = id;
    for (const auto& [key, value] : slide.encoder_attributes) content.attributes[key] = value;
    content.attributes["rows"] = content.features.rows;
    content.attributes["dim"] = content.features.dim;
    content.attributes["lineage"] = lineage_;
    content.attributes["histoflow_version"] = std::string(kVersion);
    content.attributes["dtype"] = std::string(storage_ == StorageType::Float16 ? "float16" : "float32");
    // Where CLAM and TRIDENT look: patch size and level on the coords dataset.
    if (auto v = grid.attribute<std::int64_t>("tile_size")) content.coords_attributes["patch_size"] = *v;
    if (auto v = grid.attribute<std::int64_t>("read_level")) content.coords_attributes["patch_level"] = *v;
    if (auto v = grid.attribute<double>("extent_level0")) content.coords_attributes["patch_size_level0"] = static_cast<std::int64_t>(std::llround(*v));
    if (auto v = grid.attribute<double>("read_downsample")) content.attributes["downsample"] = *v;
    if (auto v = grid.attribute<std::int64_t>("read_level")) content.attributes["level"] = *v;
    const auto file = slide_file(id, *fingerprint);
    nlohmann::json identity{{"lineage", lineage_}, {"slide_id", id}, {"slide_fingerprint", *fingerprint}, {"content", "slide"}};
    for (const auto& [key, value] : slide.encoder_attributes)
      if (auto text = std::get_if<std::string>(&value)) identity[key] = *text;
    write_slide_features(file, content, storage_, identity.dump());
    ++written_;
    out.emit(file_packet(grid.provenance, grid.attributes, content.attributes, file));
  }

  // ---- patch datasets: one file for the whole stream

  std::filesystem::path dataset_file() const { return folder_ / cache_file_name(dataset_, "", ".h5"); }

  // Checked once per run; a file that fails verification is reported once (with the first patch) and rewritten.
  bool restore_dataset() {
    std::string problem;
    std::call_once(dataset_checked_, [&] {
      const auto file = dataset_file();
      if (!std::filesystem::exists(file)) return;
      if (verify_existing_) problem = verify_sealed_file(file);
      if (!problem.empty()) problem = "'" + file.string() + "': " + problem;
      dataset_restored_ = problem.empty();
    });
    if (!problem.empty()) throw std::runtime_error(problem);
    return dataset_restored_;
  }

  void add_patch_rows(const Packet& batch, const float* data, std::int64_t dim) {
    if (batch.row_attributes.size() != batch.rows.size())
      throw std::invalid_argument("content = \"patches\" needs each row's label, class and path "
                                  "(the encoder keeps them; see its row_attributes parameter)");
    if (dim_ < 0) {
      dim_ = dim;
      for (const char* key : {"encoder", "weights_sha256", "output", "precision"})
        if (auto it = batch.attributes.find(key); it != batch.attributes.end()) encoder_attributes_[key] = it->second;
    } else if (dim != dim_) {
      throw std::invalid_argument("rows of " + std::to_string(dim) + " and " +
                                  std::to_string(dim_) + " features: two encoders feed one store");
    }
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
      patches_rows_.push_back({batch.rows[i].sequence, std::get<std::string>(get("path")), label,
                               std::vector<float>(data + static_cast<std::int64_t>(i) * dim, data + static_cast<std::int64_t>(i + 1) * dim)});
    }
  }

  void finish_dataset(Emitter& out) {
    const auto file = dataset_file();
    Provenance provenance;
    provenance.item_id = dataset_;
    if (patches_rows_.empty()) {
      if (dataset_restored_) out.emit(file_packet(provenance, {}, read_feature_attributes(file), file));
      return;
    }
    std::sort(patches_rows_.begin(), patches_rows_.end(), [](const PatchRow& a, const PatchRow& b) { return a.sequence < b.sequence; });
    PatchFeatures content;
    content.features.rows = static_cast<std::int64_t>(patches_rows_.size());
    content.features.dim = dim_;
    content.features.values.reserve(patches_rows_.size() * static_cast<std::size_t>(dim_));
    for (auto& row : patches_rows_) {
      content.features.values.insert(content.features.values.end(), row.values.begin(), row.values.end());
      content.labels.push_back(row.label);
      content.paths.push_back(row.path);
    }
    patches_rows_.clear();
    for (std::size_t i = 0; i < class_names_.size(); ++i)
      content.class_names.push_back(class_names_[i].empty() ? "class_" + std::to_string(i) : class_names_[i]);
    content.attributes = encoder_attributes_;
    content.attributes["dataset"] = dataset_;
    content.attributes["rows"] = content.features.rows;
    content.attributes["dim"] = content.features.dim;
    content.attributes["lineage"] = lineage_;
    content.attributes["histoflow_version"] = std::string(kVersion);
    content.attributes["dtype"] = std::string(storage_ == StorageType::Float16 ? "float16" : "float32");
    nlohmann::json identity{{"lineage", lineage_}, {"dataset", dataset_}, {"content", "patches"}};
    write_patch_features(file, content, storage_, identity.dump());
    ++written_;
    out.emit(file_packet(provenance, {}, content.attributes, file));
  }

  StageContext context_;
  std::filesystem::path root_, folder_;
  std::string lineage_, dataset_;
  StorageType storage_ = StorageType::Float32;
  bool patches_ = false, verify_existing_ = true;
  std::map<std::string, SlideAssembly> slides_;
  // patch datasets
  std::int64_t dim_ = -1;
  AttributeMap encoder_attributes_;
  std::vector<std::string> class_names_;
  std::vector<PatchRow> patches_rows_;
  std::once_flag dataset_checked_;
  bool dataset_restored_ = false;
  std::atomic<std::int64_t> written_{0}, restored_{0};  // files, this run (restore() may run concurrently)
};

}  // namespace

void register_feature_store(Registry& registry) {
  StageContract c;
  c.type = "feature_store";
  c.summary = "Writes features to HDF5 (CLAM/TRIDENT layout): one file per slide, or one per patch dataset; resumable";
  c.doc = "Slides (content = \"slides\"): rows from any batch are regrouped per slide; when all tiles of a slide's grid\n"
          "(second input, from tissue_tiler's grid output) have arrived, <root>/<lineage>/<slide>-<fingerprint>.h5 is\n"
          "written with /features [N, D] and /coords [N, 2] (level-0 x, y) in grid order, plus attributes: encoder,\n"
          "weights_sha256, output, tile_size, mpp, level, downsample, slide_path, slide_id, tiling parameters,\n"
          "histoflow_version. <lineage> is the SHA-256 of everything upstream that determines the features (tiling\n"
          "parameters, encoder and weights, preprocessing), so changing any of them writes elsewhere. A slide whose\n"
          "file exists (and verifies) is restored on a rerun: its tiles are neither read nor encoded again.\n"
          "Patches (content = \"patches\"): one file <root>/<lineage>/<dataset>.h5 at end of stream with /features,\n"
          "/labels, /paths and the class_names attribute. Files are written to a temporary name, checksummed and\n"
          "renamed; `flowrun cache verify` checks them. Emits one feature_file packet per file (attribute path).";
  PortSpec grid{"grid", "tile_grid", "the slides' tile grids (tissue_tiler output 'grid'); not for patch datasets"};
  grid.optional = true;
  c.inputs = {{"features", "features", "feature rows with tile provenance (torch_encoder)"}, grid};
  PortSpec files{"files", kFeatureFileKind, "one packet per finished file: path, encoder, rows, dim, slide labels"};
  files.may_be_unused = true;
  c.outputs = {files};
  c.params = {not_affecting_output(ParamSpec{"root", ParamType::Path, "Folder of the feature files; empty: <experiment output>/features",
                                             false, {}, {}, {}, {}, {}, true}),
              param_string("dtype", "float32", "Stored precision of /features", {"float32", "float16"}),
              param_string("content", "slides", "slides: one file per slide (needs the grid input); patches: one dataset file",
                           {"slides", "patches"}),
              param_string("dataset", "", "Name of a patch dataset's file; empty: the stage id"),
              not_affecting_output(param_bool("verify_existing", true, "Check the checksum of an existing file before restoring it"))};
  c.rules = {rule_input_required_when(1, "grid", "content", "slides")};
  c.resumable = true;
  c.example = "[stage.store]\nuse = \"feature_store\"\ninputs = [\"encode\", \"tiles.grid\"]\nroot = \"features\"\n";
  register_stage<FeatureStore>(registry, std::move(c));
}

}  // namespace histoflow::features
