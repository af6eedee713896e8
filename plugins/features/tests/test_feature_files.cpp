// Feature files (HDF5 round trips, float16, verification) and the stores in isolation: reassembly of rows
// that arrive in any order and before their grid, restoring on a rerun, and what is refused.
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "histoflow/features/feature_file.hpp"
#include "histoflow/features/feature_layouts.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/input_limits.hpp"
#include "histoflow/sealed_file.hpp"
#include "histoflow/sha256.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::features;

namespace {

SlideFeatures small_slide() {
  SlideFeatures s;
  s.features = {3, 2, {1.0f, -2.0f, 0.1f, 65504.0f, 1e-8f, 3.14159f}};
  s.coords = {0, 0, 224, 0, 0, 224};
  s.attributes = {{"encoder", std::string("enc")}, {"tile_size", std::int64_t{224}}, {"mpp", 0.5}, {"flag", true}};
  s.coords_attributes = {{"patch_size", std::int64_t{224}}};
  return s;
}

PacketPtr tile_grid(const std::string& slide, const std::vector<std::int64_t>& xy) {
  Packet grid;
  grid.kind = "tile_grid";
  grid.provenance.item_id = slide;
  grid.tensor = Tensor::zeros(DType::Int64, {static_cast<std::int64_t>(xy.size() / 2), 2});
  std::copy(xy.begin(), xy.end(), grid.tensor.data<std::int64_t>());
  // 224-pixel tiles read as 448 pixels from level 0 (0.5 mpp from a 0.25-mpp slide).
  grid.attributes = {{"slide_fingerprint", std::string(64, 'a')}, {"tile_size", std::int64_t{224}}, {"read_level", std::int64_t{0}},
                     {"read_size", std::int64_t{448}}, {"extent_level0", 448.0},
                     {"path", std::string("/slides/" + slide + ".svs")}, {"label:msi", std::string("1")}};
  return make_packet(std::move(grid));
}

// Feature rows for tiles (x, y) of `slide`; row i holds {x, y}.
PacketPtr rows(const std::string& slide, const std::vector<std::pair<std::int64_t, std::int64_t>>& tiles,
               const std::string& encoder = "test_encoder") {
  Packet p;
  p.kind = "features";
  p.tensor = Tensor::zeros(DType::Float32, {static_cast<std::int64_t>(tiles.size()), 2});
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    p.tensor.data<float>()[2 * i] = static_cast<float>(tiles[i].first);
    p.tensor.data<float>()[2 * i + 1] = static_cast<float>(tiles[i].second);
    Provenance r;
    r.item_id = slide;
    r.tile = TileCoord{tiles[i].first, tiles[i].second, 0, 224};
    p.rows.push_back(r);
  }
  p.attributes = {{"encoder", encoder}, {"weights_sha256", std::string("abc")}, {"output", std::string("cls")}};
  return make_packet(std::move(p));
}

}  // namespace

TEST_CASE("slide feature files round-trip, in float32 exactly and in float16 to half precision", "[features][file]") {
  const auto dir = testing::fresh_folder("feature-files");
  const SlideFeatures s = small_slide();
  write_slide_features(dir / "a.h5", s, StorageType::Float32, R"({"slide_id": "a"})");
  const SlideFeatures back = read_slide_features(dir / "a.h5");
  CHECK(back.features.values == s.features.values);
  CHECK(back.coords == s.coords);
  CHECK(std::get<std::string>(back.attributes.at("encoder")) == "enc");
  CHECK(std::get<std::int64_t>(back.attributes.at("tile_size")) == 224);
  CHECK(std::get<double>(back.attributes.at("mpp")) == 0.5);
  CHECK(std::get<bool>(back.attributes.at("flag")));
  CHECK(std::get<std::int64_t>(back.coords_attributes.at("patch_size")) == 224);
  CHECK(read_sealed_header(dir / "a.h5")->identity == R"({"slide_id": "a"})");

  write_slide_features(dir / "h.h5", s, StorageType::Float16);
  const auto half = read_slide_features(dir / "h.h5").features.values;
  REQUIRE(half.size() == 6);
  CHECK(half[0] == 1.0f);
  CHECK(half[1] == -2.0f);
  CHECK(half[2] == Approx(0.0999755859375f).epsilon(0));  // nearest half to 0.1
  CHECK(half[3] == 65504.0f);                              // the largest half
  CHECK(half[4] == 0.0f);                                  // below the smallest subnormal
  CHECK(half[5] == 3.140625f);

  // Writing the same content twice gives the same bytes (no timestamps), so reruns are comparable.
  write_slide_features(dir / "b.h5", s, StorageType::Float32, R"({"slide_id": "a"})");
  CHECK(sha256_file(dir / "a.h5") == sha256_file(dir / "b.h5"));
}

TEST_CASE("feature files refuse inconsistent content and fail verification when changed", "[features][file]") {
  const auto dir = testing::fresh_folder("feature-files-bad");
  SlideFeatures s = small_slide();
  s.coords.pop_back();
  s.coords.pop_back();
  CHECK_THROWS_WITH(write_slide_features(dir / "x.h5", s, StorageType::Float32), Catch::Contains("'coords' has 2 rows"));
  CHECK(!std::filesystem::exists(dir / "x.h5"));

  PatchFeatures p;
  p.features = {2, 1, {0.5f, 1.5f}};
  p.labels = {0, 3};
  p.paths = {"a.png", "b.png"};
  p.class_names = {"ADI", "TUM"};
  CHECK_THROWS_WITH(write_patch_features(dir / "p.h5", p, StorageType::Float32), Catch::Contains("label 3 has no class name"));
  p.labels = {0, 1};
  write_patch_features(dir / "p.h5", p, StorageType::Float32);
  const PatchFeatures back = read_patch_features(dir / "p.h5");
  CHECK(back.paths == p.paths);
  CHECK(back.class_names == p.class_names);
  CHECK(back.labels == p.labels);

  write_slide_features(dir / "c.h5", small_slide(), StorageType::Float32);
  {
    std::fstream f(dir / "c.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kSealedHeaderBytes + 100));
    f.put('\x7f');
  }
  CHECK_THROWS_WITH(read_slide_features(dir / "c.h5"), Catch::Contains("fails verification"));
  CHECK_THROWS_WITH(read_slide_features(dir / "missing.h5"), Catch::Contains("does not exist"));
}

TEST_CASE("the slide store reassembles a slide's rows in grid order whatever order they arrive in", "[features][store]") {
  testing::shared_loader();
  const auto out = testing::fresh_folder("store-harness");
  StageHarness store("use = \"slide_store\"\nroot = \"" + (out / "features").string() + "\"\n", out);
  // Rows of two slides mixed in batches; slide a's first rows come before its grid.
  CHECK(store.push(rows("a", {{224, 0}, {0, 0}}), 0).empty());
  CHECK(store.push(tile_grid("b", {0, 0, 224, 0}), 1).empty());
  CHECK(store.push(tile_grid("a", {0, 0, 224, 0, 448, 0}), 1).empty());
  const auto done = store.push(rows("b", {{224, 0}, {0, 0}}), 0);  // completes b
  REQUIRE(done.size() == 1);
  CHECK(done[0]->provenance.item_id == "b");
  const auto done_a = store.push(rows("a", {{448, 0}}), 0);
  REQUIRE(done_a.size() == 1);
  const Packet& file = *done_a[0];
  CHECK(file.kind == "feature_file");
  CHECK(file.require<std::string>("label:msi") == "1");
  CHECK(file.require<std::string>("slide_path") == "/slides/a.svs");
  CHECK(file.require<std::int64_t>("rows") == 3);
  const SlideFeatures a = read_slide_features(file.require<std::string>("path"));
  CHECK(a.coords == std::vector<std::int64_t>{0, 0, 224, 0, 448, 0});
  CHECK(a.features.values == std::vector<float>{0, 0, 224, 0, 448, 0});  // row i encodes its own tile
  CHECK(std::get<std::string>(a.attributes.at("encoder")) == "test_encoder");
  CHECK(a.attributes.count("label:msi") == 0);  // labels belong to the manifest, not the file
  // CLAM's meaning: the pixels read at patch_level; the encoder's input side apart.
  CHECK(std::get<std::int64_t>(a.coords_attributes.at("patch_size")) == 448);
  CHECK(std::get<std::int64_t>(a.coords_attributes.at("patch_level")) == 0);
  CHECK(std::get<std::int64_t>(a.coords_attributes.at("patch_size_level0")) == 448);
  CHECK(std::get<std::int64_t>(a.coords_attributes.at("target_patch_size")) == 224);
}

TEST_CASE("the slide store refuses foreign and repeated tiles, and records incomplete slides", "[features][store]") {
  testing::shared_loader();
  const auto out = testing::fresh_folder("store-harness-bad");
  StageHarness store("use = \"slide_store\"\n", out);
  store.push(tile_grid("a", {0, 0, 224, 0}), 1);
  CHECK_THROWS_WITH(store.push(rows("a", {{999, 0}}), 0), Catch::Contains("not in the slide's grid"));
  store.push(rows("a", {{0, 0}}), 0);
  CHECK_THROWS_WITH(store.push(rows("a", {{0, 0}}), 0), Catch::Contains("encoded twice"));
  CHECK(store.flush().empty());
  const auto records = store.errors().snapshot();
  REQUIRE(records.size() == 1);
  CHECK(records[0].item == "a");
  CHECK(records[0].message.find("1 of 2 tiles") != std::string::npos);
  CHECK(!std::filesystem::exists(out / "features"));  // nothing half-written
}

TEST_CASE("a rerun's slide store restores a finished slide, and only a finished one", "[features][store][resume]") {
  StageHarness::load_plugin(HISTOFLOW_PLUGIN_BUILD_DIR "/libhf_features.so");
  const auto out = testing::fresh_folder("store-restore");
  const std::string snippet = "use = \"slide_store\"\nroot = \"" + (out / "features").string() + "\"\n";
  {
    StageHarness first(snippet, out);
    first.push(tile_grid("a", {0, 0, 224, 0}), 1);
    REQUIRE(first.push(rows("a", {{0, 0}, {224, 0}}), 0).size() == 1);
  }
  Packet slide;  // what slide_source emits for the slide on the rerun
  slide.kind = "slide";
  slide.provenance.item_id = "a";
  slide.attributes = {{"slide_fingerprint", std::string(64, 'a')}, {"path", std::string("/slides/a.svs")},
                      {"label:msi", std::string("0")}};
  StageHarness rerun(snippet, out);  // same lineage: it finds what the first run finished
  const auto restored = rerun.restore(make_packet(slide));
  CHECK(restored.restored);
  REQUIRE(restored.packets.size() == 1);
  CHECK(restored.packets[0]->require<std::int64_t>("rows") == 2);
  CHECK(restored.packets[0]->require<std::string>("label:msi") == "0");  // this run's manifest, not the file's
  slide.provenance.item_id = "b";
  const auto missing = rerun.restore(make_packet(slide));
  CHECK_FALSE(missing.restored);
  CHECK(missing.packets.empty());
  StageHarness other(snippet + "dtype = \"float16\"\n", out);  // another lineage: nothing to restore
  slide.provenance.item_id = "a";
  CHECK_FALSE(other.restore(make_packet(slide)).restored);
}

TEST_CASE("a store refuses a second encoder even when its rows have the same width", "[features][store]") {
  testing::shared_loader();
  const auto out = testing::fresh_folder("store-two-encoders");
  StageHarness store("use = \"slide_store\"\n", out);
  store.push(tile_grid("a", {0, 0, 224, 0}), 1);
  store.push(rows("a", {{0, 0}}), 0);
  CHECK_THROWS_WITH(store.push(rows("a", {{224, 0}}, "other_encoder"), 0),
                    Catch::Contains("two encoders feed one store: encoder test_encoder") &&
                        Catch::Contains("encoder other_encoder") && Catch::Contains("give each encoder its own store"));
}

namespace {

// What tile_reader emits on its output 'skipped' for a tile it could not read (on_tile_error = "skip_tile").
PacketPtr skipped_tile(const std::string& slide, std::int64_t x, std::int64_t y, const std::string& error) {
  Packet ref;
  ref.kind = "tile_ref";
  ref.provenance.item_id = slide;
  ref.provenance.tile = TileCoord{x, y, 0, 224};
  ref.attributes = {{"read_error", error}, {"path", std::string("/slides/" + slide + ".svs")}};
  return make_packet(std::move(ref));
}

}  // namespace

TEST_CASE("the slide store completes a slide without its skipped tiles and names them in the file", "[features][store][skip_tile]") {
  testing::shared_loader();
  const auto out = testing::fresh_folder("store-skipped");
  StageHarness store("use = \"slide_store\"\nroot = \"" + (out / "features").string() + "\"\n", out);
  // Grid of 4 tiles; one skipped before the grid arrives, one after; rows for the other two.
  CHECK(store.push(skipped_tile("a", 224, 0, "Not a JPEG file"), 2).empty());
  CHECK(store.push(tile_grid("a", {0, 0, 224, 0, 448, 0, 0, 224}), 1).empty());
  CHECK(store.push(rows("a", {{0, 224}, {0, 0}}), 0).empty());
  const auto done = store.push(skipped_tile("a", 448, 0, "Corrupt JPEG data"), 2);  // the last of the grid
  REQUIRE(done.size() == 1);
  CHECK(done[0]->require<std::int64_t>("rows") == 2);
  const SlideFeatures a = read_slide_features(done[0]->require<std::string>("path"));
  CHECK(a.features.rows == 2);
  CHECK(a.coords == std::vector<std::int64_t>{0, 0, 0, 224});  // grid order, without the skipped tiles
  CHECK(a.features.values == std::vector<float>{0, 0, 0, 224});  // each row still encodes its own tile
  CHECK(std::get<std::int64_t>(a.attributes.at("rows")) == 2);
  const auto lost = nlohmann::json::parse(std::get<std::string>(a.attributes.at("skipped_tiles")));
  REQUIRE(lost.size() == 2);
  CHECK(lost[0] == nlohmann::json{{"x", 224}, {"y", 0}, {"level", 0}, {"error", "Not a JPEG file"}});
  CHECK(lost[1] == nlohmann::json{{"x", 448}, {"y", 0}, {"level", 0}, {"error", "Corrupt JPEG data"}});

  // A slide that lost nothing has no skipped_tiles attribute.
  store.push(tile_grid("b", {0, 0}), 1);
  const auto b = store.push(rows("b", {{0, 0}}), 0);
  REQUIRE(b.size() == 1);
  CHECK(read_slide_features(b[0]->require<std::string>("path")).attributes.count("skipped_tiles") == 0);
  CHECK(store.errors().size() == 0);
}

TEST_CASE("the slide store refuses a slide whose every tile was skipped and reports skipped tiles of incomplete slides",
          "[features][store][skip_tile]") {
  testing::shared_loader();
  const auto out = testing::fresh_folder("store-skipped-bad");
  StageHarness store("use = \"slide_store\"\n", out);
  store.push(tile_grid("b", {0, 0, 224, 0}), 1);
  store.push(rows("b", {{0, 0}}), 0);  // the store knows the encoder's width
  store.push(tile_grid("a", {0, 0, 224, 0}), 1);
  store.push(skipped_tile("a", 0, 0, "unreadable"), 2);
  CHECK_THROWS_WITH(store.push(skipped_tile("a", 224, 0, "unreadable"), 2),
                    Catch::Contains("slide 'a': all 2 tiles of its grid were skipped"));
  CHECK_THROWS_WITH(store.push(skipped_tile("b", 0, 0, "unreadable"), 2), Catch::Contains("both encoded and skipped"));
  store.push(tile_grid("c", {0, 0, 224, 0, 448, 0}), 1);
  store.push(rows("c", {{0, 0}}), 0);
  store.push(skipped_tile("c", 224, 0, "unreadable"), 2);  // (448, 0) never comes: it failed the slide upstream
  store.flush();
  std::map<std::string, std::string> message_of;
  for (const auto& e : store.errors().snapshot()) message_of[e.item] = e.message;
  CHECK_THAT(message_of["c"], Catch::Contains("1 of 3 tiles were encoded, 1 skipped as unreadable"));
  CHECK_THAT(message_of["b"], Catch::Contains("1 of 2 tiles were encoded"));
  CHECK(!std::filesystem::exists(out / "features"));
}

TEST_CASE("a feature file claiming more values than the limit is refused before they are allocated", "[features][limits]") {
  const auto file = testing::fresh_folder("feature-limits") / "a.h5";
  write_slide_features(file, small_slide(), StorageType::Float32, R"({"slide_id": "a"})");
  ScopedInputLimit lowered(InputLimit::FeatureValues, 5);  // features [3, 2]: 6 values
  CHECK_THROWS_WITH(read_slide_features(file), Catch::Contains("'features': 6 values of one feature matrix exceed the limit "
                                                               "feature_values = 5 (raise it with HISTOFLOW_LIMIT_FEATURE_VALUES)"));
  CHECK_THROWS_WITH(read_feature_shape(file), Catch::Contains("feature_values = 5"));  // no dataset read, still refused
}

TEST_CASE("a patch file's label of 2^62 does not make 2^62 class names", "[features][limits]") {
  // Found by fuzzing (tests/fuzz/regressions/feature_file): labels without class_names are named 0..max.
  const auto file = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests/fuzz/regressions/feature_file/huge-label-names-every-class.h5";
  CHECK_THROWS_WITH(read_patch_features(FeatureFileRef{file, "h5", {}}),
                    Catch::Contains("classes implied by the label numbers exceed the limit label_classes = 1000000"));
}

TEST_CASE("a feature file that crashes libhdf5 fails alone, with an error naming it, and the next file reads", "[features][hostile]") {
  // Found by fuzzing: libhdf5 1.10.8 reads freed memory building this file's damaged attribute table
  // (tests/fuzz/library_findings). In this process it would be a segmentation fault; the reader process takes it.
  const auto hostile = std::filesystem::path(HISTOFLOW_SOURCE_DIR) /
                       "tests/fuzz/library_findings/feature_file/hdf5-attribute-table-use-after-free.h5";
  CHECK_THROWS_WITH(read_feature_attributes(hostile),
                    Catch::Contains("feature file '" + hostile.string() + "': libhdf5 ") &&
                        Catch::Contains("reading it in the reader process: the file is damaged or not what it claims to be"));
  const auto good = testing::fresh_folder("feature-after-crash") / "a.h5";
  write_slide_features(good, small_slide(), StorageType::Float32, R"({"slide_id": "a"})");
  const SlideFeatures back = read_slide_features(good);
  CHECK(back.features.values == small_slide().features.values);
  CHECK(back.attributes == small_slide().attributes);
}

TEST_CASE("a feature file on which libhdf5 never finishes is stopped at the limit feature_read_seconds", "[features][hostile]") {
  // Found by fuzzing: libhdf5 1.10.8 loops forever reading this file's damaged global heap.
  const auto hostile = std::filesystem::path(HISTOFLOW_SOURCE_DIR) /
                       "tests/fuzz/library_findings/feature_file/hdf5-global-heap-read-never-ends.h5";
  ScopedInputLimit seconds(InputLimit::FeatureReadSeconds, 1);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(read_patch_features(hostile, false, false),
                    "feature file '" + hostile.string() + "': libhdf5 had not finished reading it after 1 s, the limit "
                    "feature_read_seconds (raise it with HISTOFLOW_LIMIT_FEATURE_READ_SECONDS): the reader process was "
                    "stopped; the file is damaged or not what it claims to be");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("a reader's own error comes back from the reader process word for word", "[features][hostile]") {
  const auto folder = testing::fresh_folder("feature-reader-errors");
  CHECK_THROWS_WITH(read_slide_features(folder / "missing.h5"), "feature file '" + (folder / "missing.h5").string() + "' does not exist");
  std::ofstream(folder / "text.h5") << "not HDF5";
  CHECK_THROWS_WITH(read_feature_shape(folder / "text.h5"), "feature file '" + (folder / "text.h5").string() + "': not an HDF5 file");
}
