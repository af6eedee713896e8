// slide_store: regroups feature rows per slide (batches mix slides), writes one HDF5 file per slide when its
// last tile arrives, and restores finished slides on a rerun without their pixels being read.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>

#include "feature_stages.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/sealed_file.hpp"
#include "histoflow/slides/slide_kinds.hpp"
#include "store_files.hpp"

namespace histoflow::features {
namespace {

constexpr std::size_t kGridPort = 1;
constexpr std::size_t kSkippedPort = 2;  // tiles tile_reader left out (on_tile_error = "skip_tile")
constexpr const char* kContent = "slide";

// One slide being assembled: rows may arrive before its grid (they travel different paths).
struct SlideAssembly {
  PacketPtr grid;
  std::unordered_map<std::uint64_t, std::int64_t> index_of;  // (x, y) -> row in the grid
  std::vector<float> values;                                 // grid rows x dim, filled as rows arrive
  std::vector<bool> filled;
  std::int64_t received = 0;
  std::vector<std::pair<TileCoord, std::vector<float>>> early;  // rows that came before the grid
  std::map<std::int64_t, std::pair<TileCoord, std::string>> skipped;  // grid row -> the tile left out, why
  std::vector<std::pair<TileCoord, std::string>> early_skipped;       // skipped before the grid came
};

std::uint64_t coord_key(std::int64_t x, std::int64_t y) {
  return (static_cast<std::uint64_t>(x) << 32) ^ static_cast<std::uint64_t>(y & 0xffffffff);
}

// Takes the skipped tiles' rows out of a slide's grid-ordered content (their rows hold no features) and names
// them in the root attribute skipped_tiles: a JSON array of {"x", "y", "level", "error"}, in grid order.
void leave_out_skipped(const std::string& id, const std::map<std::int64_t, std::pair<TileCoord, std::string>>& skipped,
                       SlideFeatures& content) {
  FeatureMatrix& m = content.features;
  if (static_cast<std::int64_t>(skipped.size()) >= m.rows)
    throw std::invalid_argument("slide '" + id + "': all " + std::to_string(m.rows) +
                                " tiles of its grid were skipped as unreadable: no feature file written");
  const auto dim = static_cast<std::size_t>(m.dim);
  std::size_t kept = 0;
  nlohmann::json lost = nlohmann::json::array();
  for (std::int64_t row = 0; row < m.rows; ++row) {
    if (const auto it = skipped.find(row); it != skipped.end()) {
      const auto& [tile, error] = it->second;
      lost.push_back({{"x", tile.x}, {"y", tile.y}, {"level", tile.level}, {"error", error}});
      continue;
    }
    const auto from = static_cast<std::size_t>(row);
    std::copy_n(m.values.begin() + static_cast<std::ptrdiff_t>(from * dim), dim, m.values.begin() + static_cast<std::ptrdiff_t>(kept * dim));
    content.coords[2 * kept] = content.coords[2 * from];
    content.coords[2 * kept + 1] = content.coords[2 * from + 1];
    ++kept;
  }
  m.rows = static_cast<std::int64_t>(kept);
  m.values.resize(kept * dim);
  content.coords.resize(2 * kept);
  content.attributes["skipped_tiles"] = lost.dump();
}

class SlideStore final : public Stage {
 public:
  explicit SlideStore(const StageContext& context) : context_(context), store_(context) {}

  void set_lineage(const std::string& lineage) override { store_.set_lineage(lineage); }

  bool restore(const Packet& item, Emitter& out) override {
    const auto* fingerprint = item.attribute<std::string>("slide_fingerprint");
    if (!fingerprint) return false;  // a source that cannot say what the slide is: always computed
    const auto file = slide_file(item.provenance.item_id, *fingerprint);
    if (!std::filesystem::exists(file)) return false;
    if (store_.verify_existing) {
      const std::string problem = verify_sealed_file(file);
      if (!problem.empty()) throw std::runtime_error("'" + file.string() + "': " + problem);
    }
    out.emit(feature_file_packet(item.provenance, item.attributes, read_feature_attributes(file), file, kContent));
    ++restored_;
    return true;
  }

  void process(const PacketPtr& input, std::size_t port, Emitter& out) override {
    if (port == kGridPort) return add_grid(input, out);
    if (port == kSkippedPort) return add_skipped(input, out);
    const Packet& batch = *input;
    const std::int64_t dim = feature_width(batch);
    encoder_.check(batch, dim);
    const float* data = batch.tensor.data<float>();
    std::vector<std::string> completed;
    for (std::size_t i = 0; i < batch.rows.size(); ++i) {
      const Provenance& row = batch.rows[i];
      if (!row.tile)
        throw std::invalid_argument("row of item '" + row.item_id +
                                    "' has no tile coordinates (slide_store takes tiles of slides; patch_store takes patches)");
      SlideAssembly& slide = slides_[row.item_id];
      const float* values = data + static_cast<std::int64_t>(i) * dim;
      if (!slide.grid) slide.early.emplace_back(*row.tile, std::vector<float>(values, values + dim));
      else place(row.item_id, slide, *row.tile, values);
      if (slide.grid && slide.received == static_cast<std::int64_t>(slide.filled.size())) completed.push_back(row.item_id);
    }
    for (const auto& id : completed)
      if (slides_.count(id)) finish(id, out);
  }

  void flush(Emitter&) override {
    for (const auto& [id, slide] : slides_) {
      const std::string message = !slide.grid
                                      ? "no tile grid arrived for the slide (the tiler failed it, or the grid input is not the tiler's)"
                                      : std::to_string(slide.received - static_cast<std::int64_t>(slide.skipped.size())) + " of " +
                                            std::to_string(slide.filled.size()) + " tiles were encoded" +
                                            (slide.skipped.empty() ? "" : ", " + std::to_string(slide.skipped.size()) + " skipped as unreadable") +
                                            " (the others failed upstream): no feature file written";
      context_.errors->add({context_.stage_id, id, 0, message});
    }
    slides_.clear();
  }

  // The feature folder, when this run wrote into it; a run that only restored finished files names none
  // (the result must be from this run).
  std::vector<StageResult> results() const override {
    const std::int64_t written = written_.load();
    if (written == 0) return {};
    std::string what = "feature files (" + std::to_string(written) + " written";
    if (const std::int64_t restored = restored_.load()) what += ", " + std::to_string(restored) + " restored";
    return {{what + ")", std::filesystem::absolute(store_.folder)}};
  }

 private:
  std::filesystem::path slide_file(const std::string& slide_id, const std::string& fingerprint) const {
    return store_.folder / cache_file_name(slide_id, fingerprint, ".h5");
  }

  void add_grid(const PacketPtr& grid, Emitter& out) {
    const std::string& id = grid->provenance.item_id;
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
    for (auto& [tile, error] : std::exchange(slide.early_skipped, {})) skip(id, slide, tile, std::move(error));
    if (n > 0 && slide.received == n) finish(id, out);  // its rows came first
  }

  void place(const std::string& id, SlideAssembly& slide, const TileCoord& tile, const float* values) {
    const auto it = slide.index_of.find(coord_key(tile.x, tile.y));
    if (it == slide.index_of.end())
      throw std::invalid_argument("slide '" + id + "': a feature row for tile (" + std::to_string(tile.x) + ", " +
                                  std::to_string(tile.y) + ") that is not in the slide's grid");
    const auto dim = static_cast<std::size_t>(encoder_.dim());
    if (slide.values.empty()) slide.values.assign(slide.filled.size() * dim, 0.0f);
    const auto row = static_cast<std::size_t>(it->second);
    if (slide.filled[row]) throw std::invalid_argument("slide '" + id + "': tile (" + std::to_string(tile.x) + ", " +
                                                       std::to_string(tile.y) + ") was encoded twice");
    std::copy(values, values + dim, slide.values.begin() + static_cast<std::ptrdiff_t>(row * dim));
    slide.filled[row] = true;
    ++slide.received;
  }

  // A tile tile_reader could not read and left out: it counts towards the slide's completion without a row.
  void add_skipped(const PacketPtr& ref, Emitter& out) {
    const std::string& id = ref->provenance.item_id;
    if (!ref->provenance.tile) throw std::invalid_argument("slide '" + id + "': a skipped tile without tile coordinates");
    std::string error = ref->require<std::string>("read_error");
    SlideAssembly& slide = slides_[id];
    if (!slide.grid) {
      slide.early_skipped.emplace_back(*ref->provenance.tile, std::move(error));
      return;
    }
    skip(id, slide, *ref->provenance.tile, std::move(error));
    if (slide.received == static_cast<std::int64_t>(slide.filled.size())) finish(id, out);
  }

  void skip(const std::string& id, SlideAssembly& slide, const TileCoord& tile, std::string error) {
    const auto it = slide.index_of.find(coord_key(tile.x, tile.y));
    if (it == slide.index_of.end())
      throw std::invalid_argument("slide '" + id + "': a skipped tile (" + std::to_string(tile.x) + ", " + std::to_string(tile.y) +
                                  ") that is not in the slide's grid");
    const auto row = static_cast<std::size_t>(it->second);
    if (slide.filled[row]) throw std::invalid_argument("slide '" + id + "': tile (" + std::to_string(tile.x) + ", " +
                                                       std::to_string(tile.y) + ") was both encoded and skipped, or skipped twice");
    slide.filled[row] = true;
    slide.skipped.emplace(it->second, std::pair{tile, std::move(error)});
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
    content.features.dim = encoder_.dim();
    content.features.values = std::move(slide.values);
    const std::int64_t* xy = grid.tensor.data<std::int64_t>();
    content.coords.assign(xy, xy + 2 * content.features.rows);
    if (!slide.skipped.empty()) leave_out_skipped(id, slide.skipped, content);
    for (const auto& [key, value] : grid.attributes)
      if (!is_manifest_attribute(key)) content.attributes[key] = value;  // tiling parameters and slide metadata
    if (auto path = grid.attribute<std::string>("path")) content.attributes["slide_path"] = *path;
    content.attributes["slide_id"] = id;
    for (const auto& [key, value] : encoder_.attributes()) content.attributes[key] = value;
    add_file_attributes(content.attributes, content.features.rows, content.features.dim, store_);
    // Where CLAM looks, in its meaning: patch_size is the side read at patch_level (CLAM reads exactly that
    // region), not the encoder's input size, which differs whenever tiles are resampled (target_patch_size).
    if (auto v = grid.attribute<std::int64_t>("read_size")) content.coords_attributes["patch_size"] = *v;
    if (auto v = grid.attribute<std::int64_t>("tile_size")) content.coords_attributes["target_patch_size"] = *v;
    if (auto v = grid.attribute<std::int64_t>("read_level")) content.coords_attributes["patch_level"] = *v;
    if (auto v = grid.attribute<double>("extent_level0")) content.coords_attributes["patch_size_level0"] = static_cast<std::int64_t>(std::llround(*v));
    if (auto v = grid.attribute<double>("read_downsample")) content.attributes["downsample"] = *v;
    if (auto v = grid.attribute<std::int64_t>("read_level")) content.attributes["level"] = *v;
    const auto file = slide_file(id, *fingerprint);
    nlohmann::json identity{{"lineage", store_.lineage}, {"slide_id", id}, {"slide_fingerprint", *fingerprint}, {"content", kContent}};
    for (const auto& [key, value] : encoder_.attributes())
      if (auto text = std::get_if<std::string>(&value)) identity[key] = *text;
    write_slide_features(file, content, store_.storage, identity.dump());
    ++written_;
    out.emit(feature_file_packet(grid.provenance, grid.attributes, content.attributes, file, kContent));
  }

  StageContext context_;
  StoreFolder store_;
  EncoderIdentity encoder_;
  std::map<std::string, SlideAssembly> slides_;
  std::atomic<std::int64_t> written_{0}, restored_{0};  // files, this run (restore() may run concurrently)
};

}  // namespace

void register_slide_store(Registry& registry) {
  StageContract c;
  c.type = "slide_store";
  c.summary = "Writes one HDF5 feature file per slide (CLAM/TRIDENT layout); resumable";
  c.doc = "Rows from any batch are regrouped per slide; when all tiles of a slide's grid (second input, from\n"
          "tissue_tiler's grid output) have arrived, <root>/<lineage>/<slide>-<fingerprint>.h5 is written with\n"
          "/features [N, D] and /coords [N, 2] (level-0 x, y) in grid order, plus attributes: encoder,\n"
          "weights_sha256, output, tile_size, mpp, level, downsample, slide_path, slide_id, tiling parameters,\n"
          "histoflow_version. Tiles tile_reader skipped as unreadable (third input) are left out of both datasets\n"
          "and named in the root attribute skipped_tiles (JSON: x, y, level, error); a slide with none has no such\n"
          "attribute. <lineage> is the SHA-256 of everything upstream that determines the features (tiling\n"
          "parameters, encoder and weights, preprocessing), so changing any of them writes elsewhere. A slide whose\n"
          "file exists (and verifies) is restored on a rerun: its tiles are neither read nor encoded again.\n"
          "Files are written to a temporary name, checksummed and renamed; `flowrun cache verify` checks them.\n"
          "One store takes one encoder: rows of a second encoder (even of the same width) stop the run.\n"
          "Emits one feature_file packet per file. Patch datasets go to patch_store.";
  PortSpec skipped{"skipped", slides::kTileRefKind,
                   "tiles tile_reader left out (its output 'skipped', on_tile_error = \"skip_tile\"): the slide completes without them"};
  skipped.optional = true;
  c.inputs = {{"features", kinds::kFeatures, "feature rows with tile provenance (torch_encoder)"},
              {"grid", slides::kGridKind, "the slides' tile grids (tissue_tiler output 'grid')"},
              skipped};
  PortSpec files{"files", kFeatureFileKind, "one packet per finished file: path, encoder, rows, dim, slide labels"};
  files.may_be_unused = true;
  c.outputs = {files};
  c.params = store_params();
  c.resumable = true;
  c.example = "[stage.store]\nuse = \"slide_store\"\ninputs = [\"encode\", \"tiles.grid\"]\n";
  register_stage<SlideStore>(registry, std::move(c));
}

}  // namespace histoflow::features
