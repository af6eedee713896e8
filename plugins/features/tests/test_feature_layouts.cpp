// Features in other tools' layouts: the store's files exported as CLAM and TRIDENT write them, read back by
// feature_reader, give mil_cv the same numbers as the store's own; bad files fail their slide only.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "histoflow/errors.hpp"
#include "histoflow/features/feature_file.hpp"
#include "histoflow/features/feature_layouts.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/torch_encoders/torch_checkpoint.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kDim = 8;

// A slide_store file: tiles of 64 px at 0.75 mpp read as 96 px from level 0 of a 0.5-mpp, 20x slide.
features::SlideFeatures store_file(const std::string& label, std::uint64_t seed, std::int64_t tiles = 20) {
  features::SlideFeatures s;
  s.features.rows = tiles;
  s.features.dim = kDim;
  std::mt19937_64 random(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (std::int64_t i = 0; i < tiles * kDim; ++i) s.features.values.push_back(noise(random));
  if (label == "1")
    for (std::int64_t t = 0; t < tiles / 4 + 1; ++t)
      for (int d = 0; d < 3; ++d) s.features.values[t * kDim + d] += 3.0f;
  for (std::int64_t t = 0; t < tiles; ++t) s.coords.push_back(96 * (t % 5)), s.coords.push_back(96 * (t / 5));
  s.attributes = {{"encoder", std::string("color_stats")}, {"tile_size", std::int64_t{64}}, {"read_size", std::int64_t{96}},
                  {"level", std::int64_t{0}}, {"downsample", 1.0}, {"extent_level0", 96.0}, {"stride", std::int64_t{64}},
                  {"mpp", 0.75}, {"slide_mpp", 0.5}, {"objective_power", 20.0},
                  {"levels", std::string("4096x3072 @1.000000; 2048x1536 @2.000000")}};
  s.coords_attributes = {{"patch_size", std::int64_t{96}}, {"patch_level", std::int64_t{0}}};
  return s;
}

struct Cohort {
  fs::path folder, store, manifest;
  std::vector<PacketPtr> store_packets;  // as slide_store announces its files
};

Cohort make_cohort(const std::string& name) {
  Cohort c;
  c.folder = testing::fresh_folder(name);
  c.store = c.folder / "store";
  c.manifest = c.folder / "cohort.csv";
  std::ofstream csv(c.manifest);
  csv << "slide_id,case_id,label,cohort\n";
  for (int i = 0; i < 16; ++i) {
    const std::string id = "S" + std::to_string(i), label = std::to_string(i % 2), cohort = i < 12 ? "train" : "external";
    csv << id << ",P" << i << "," << label << "," << cohort << "\n";
    const fs::path file = c.store / (id + "-0123456789ab.h5");
    features::write_slide_features(file, store_file(label, 100 + i), features::StorageType::Float32);
    Packet p;
    p.kind = "feature_file";
    p.provenance.item_id = id;
    p.attributes = {{"path", file.string()}, {"content", std::string("slide")}, {"encoder", std::string("color_stats")},
                    {"rows", std::int64_t{20}}, {"dim", kDim}, {"slide_id", id}, {"patient", "P" + std::to_string(i)},
                    {"cohort", cohort}, {"label:label", label}};
    c.store_packets.push_back(make_packet(std::move(p)));
  }
  return c;
}

std::string reader(const Cohort& c, const fs::path& root, const std::string& layout, const std::string& extra = "") {
  return "use = \"feature_reader\"\nmanifest = \"" + c.manifest.string() + "\"\nid_column = \"slide_id\"\n"
         "patient_column = \"case_id\"\ncohort_column = \"cohort\"\nroot = \"" + root.string() + "\"\nlayout = \"" + layout + "\"\n" + extra;
}

void export_to(const Cohort& c, const std::string& layout) {
  StageHarness h("use = \"feature_export\"\nlayout = \"" + layout + "\"\nroot = \"" + (c.folder / layout).string() + "\"\n");
  for (const auto& p : c.store_packets) REQUIRE(h.push(p).empty());
  h.flush();
}

// mil_cv's in-domain and external metrics, as one comparable map.
std::map<std::string, double> mil_metrics(const std::vector<PacketPtr>& files, const fs::path& out) {
  StageHarness h("use = \"mil_cv\"\nfolds = 3\nepochs = 6\npatience = 3\nhidden_dim = 16\nbootstrap = 50\nheatmaps = false\n", out, 7);
  for (const auto& p : files) h.push(p);
  std::map<std::string, double> metrics;
  for (const auto& result : h.flush())
    for (const auto& [key, value] : result->attributes)
      if (const auto* number = std::get_if<double>(&value)) metrics[result->require<std::string>("setting") + " " + key] = *number;
  return metrics;
}

}  // namespace

TEST_CASE("feature files exported in CLAM's and TRIDENT's layouts read back to the same mil_cv metrics", "[features][layouts][slow]") {
  testing::shared_loader();
  const Cohort c = make_cohort("feature-layouts");
  export_to(c, "clam");
  export_to(c, "trident");

  // Where each tool looks, with its meaning of the coordinates' attributes.
  const auto clam = features::read_slide_features(c.folder / "clam/h5_files/S3.h5", false);
  CHECK(std::get<std::int64_t>(clam.coords_attributes.at("patch_size")) == 96);  // read at patch_level, not the 64 px input
  CHECK(std::get<std::int64_t>(clam.coords_attributes.at("patch_level")) == 0);
  CHECK(fs::exists(c.folder / "clam/pt_files/S3.pt"));
  CHECK(features::read_coordinates(c.folder / "clam/patches/S3.h5").coords == clam.coords);
  const fs::path trident_job = c.folder / "trident/13.333333x_64px_0px_overlap";
  const auto trident = features::read_slide_features(trident_job / "features_color_stats/S3.h5", false);
  CHECK(std::get<std::int64_t>(trident.coords_attributes.at("patch_size")) == 64);
  CHECK(std::get<std::int64_t>(trident.coords_attributes.at("patch_size_level0")) == 96);
  CHECK(std::get<std::int64_t>(trident.coords_attributes.at("level0_magnification")) == 20);
  CHECK(std::get<double>(trident.coords_attributes.at("target_magnification")) == Approx(20.0 * 0.5 / 0.75));
  CHECK(std::get<std::int64_t>(trident.coords_attributes.at("level0_width")) == 4096);
  CHECK(std::get<std::string>(trident.features_attributes.at("encoder")) == "color_stats");
  CHECK(trident.features.values == clam.features.values);

  const auto baseline = mil_metrics(c.store_packets, c.folder / "mil-store");
  REQUIRE(baseline.count("in-domain mean:auroc"));
  REQUIRE(baseline.count("external mean:auroc"));
  // CLAM's pt_files alone (coordinates from patches/), after the h5 files have gone.
  fs::copy(c.folder / "clam", c.folder / "clam-pt", fs::copy_options::recursive);
  fs::remove_all(c.folder / "clam-pt/h5_files");
  const std::vector<std::pair<std::string, std::string>> sources = {
      {"histoflow", reader(c, c.store, "histoflow")},
      {"clam h5", reader(c, c.folder / "clam", "clam")},
      {"clam pt", reader(c, c.folder / "clam-pt", "clam", "encoder = \"color_stats\"\n")},  // a .pt names no encoder
      {"trident", reader(c, trident_job / "features_color_stats", "trident")}};
  for (const auto& [name, snippet] : sources) {
    INFO(name);
    StageHarness h(snippet);
    const auto files = h.generate_all();
    REQUIRE(files.size() == 16);
    CHECK(files[3]->require<std::string>("encoder") == "color_stats");
    CHECK(files[3]->require<std::string>("label:label") == "1");
    CHECK(files[3]->require<std::string>("patient") == "P3");
    CHECK(h.errors().snapshot().empty());
    CHECK(mil_metrics(files, c.folder / ("mil-" + name)) == baseline);
  }
}

TEST_CASE("feature_reader fails the slides whose files are missing, unreadable, narrower or without coordinates", "[features][layouts]") {
  testing::shared_loader();
  const Cohort c = make_cohort("feature-reader-errors");
  export_to(c, "clam");
  const fs::path clam = c.folder / "clam";
  fs::remove(clam / "h5_files/S1.h5");
  fs::remove(clam / "pt_files/S1.pt");                        // S1: nothing
  fs::remove(clam / "h5_files/S2.h5");
  fs::remove(clam / "patches/S2.h5");                         // S2: a .pt without coordinates
  std::ofstream(clam / "h5_files/S4.h5") << "not hdf5";      // S4: unreadable
  auto narrow = store_file("0", 5);
  narrow.features.dim = 4;
  narrow.features.values.resize(20 * 4);
  fs::remove(clam / "h5_files/S5.h5");
  features::write_slide_features(clam / "h5_files/S5.h5", narrow, features::StorageType::Float32);  // S5: 4 wide

  StageHarness h(reader(c, clam, "clam"));
  const auto files = h.generate_all();
  CHECK(files.size() == 12);
  std::map<std::string, std::string> errors;
  for (const auto& record : h.errors().snapshot()) errors[record.item] = record.message;
  REQUIRE(errors.size() == 4);
  CHECK_THAT(errors["S1"], Catch::Contains("no feature file") && Catch::Contains("h5_files/S1.h5"));
  CHECK_THAT(errors["S2"], Catch::Contains("pt_files/S2.pt' has no coordinates") && Catch::Contains("require_coords = false"));
  CHECK_THAT(errors["S4"], Catch::Contains("h5_files/S4.h5"));
  CHECK_THAT(errors["S5"], Catch::Contains("has 4 features per row") && Catch::Contains("has 8"));

  // Other tools' files carry no tiling geometry: feature_export refuses them, naming the file.
  StageHarness exporter("use = \"feature_export\"\nlayout = \"trident\"\nroot = \"" + (c.folder / "again").string() + "\"\n");
  CHECK_THROWS_WITH(exporter.push(files[0]), Catch::Contains("h5_files/S0.h5") && Catch::Contains("another tool's (h5)"));

  // Without coordinates required, S2's .pt is taken (mil_cv needs none).
  StageHarness lenient(reader(c, clam, "clam", "require_coords = false\n"));
  const auto more = lenient.generate_all();
  CHECK(more.size() == 13);
  // A store folder with two files for one slide id (two different slide files): that slide fails.
  fs::copy_file(c.store / "S0-0123456789ab.h5", c.store / "S0-ba9876543210.h5");
  StageHarness store(reader(c, c.store, "histoflow"));
  CHECK(store.generate_all().size() == 15);
  REQUIRE(store.errors().snapshot().size() == 1);
  CHECK_THAT(store.errors().snapshot()[0].message, Catch::Contains("slide 'S0' has 2 feature files"));
  // A folder none of whose files match the manifest: the run stops before any work.
  CHECK_THROWS_AS(StageHarness(reader(c, c.store, "clam")), FatalError);
}

TEST_CASE("torch.save tensor files: float32 written and read back without LibTorch; empty tensors too", "[features][layouts]") {
  const std::vector<float> values{1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f};
  const std::string bytes = torch_encoders::write_torch_tensor({2, 3}, values.data(), "S0");
  const auto t = torch_encoders::read_torch_tensor(bytes, "S0.pt");
  CHECK(t.dtype == "F32");
  CHECK(t.shape == std::vector<std::int64_t>{2, 3});
  CHECK(t.strides == std::vector<std::int64_t>{3, 1});
  REQUIRE(t.storage->size() == values.size() * 4);
  CHECK(std::memcmp(t.storage->data(), values.data(), t.storage->size()) == 0);
  CHECK_THROWS_WITH(torch_encoders::read_torch_tensor(bytes.substr(0, bytes.size() / 2), "half.pt"), Catch::Contains("half.pt"));
  // A slide without tiles: [0, D], an empty storage, is a tensor of no rows (not one outside its storage).
  const auto empty = torch_encoders::read_torch_tensor(torch_encoders::write_torch_tensor({0, 3}, values.data(), "archive"), "empty.pt");
  CHECK(empty.shape == std::vector<std::int64_t>{0, 3});
}

namespace {

const fs::path kFixtures = fs::path(HISTOFLOW_SOURCE_DIR) / "tests/fixtures/features";

// knn_eval's results on a train and a test feature_file packet, by method.
std::map<std::string, double> knn_accuracy(const PacketPtr& train, const PacketPtr& test, const fs::path& out) {
  StageHarness h("use = \"knn_eval\"\nk = [1, 5]\nthreads = 1\n", out);
  h.push(train);
  h.push(test);
  std::map<std::string, double> accuracy;
  for (const auto& e : h.flush()) accuracy[e->require<std::string>("method")] = e->require<double>("mean:balanced_accuracy");
  return accuracy;
}

}  // namespace

TEST_CASE("patch_feature_reader: a .pt dict and a bare HDF5 file become patch datasets knn_eval takes", "[features][layouts]") {
  testing::shared_loader();
  const fs::path folder = testing::fresh_folder("patch-feature-reader");
  const auto read = [&](const std::string& file, const std::string& dataset) {
    StageHarness h("use = \"patch_feature_reader\"\nfile = \"" + (kFixtures / file).string() + "\"\ndataset = \"" + dataset +
                       "\"\nencoder = \"foreign\"\nclass_names = [\"ADI\", \"STR\", \"TUM\"]\n",
                   folder / "run");
    const auto packets = h.generate_all();
    REQUIRE(packets.size() == 1);
    return packets[0];
  };
  const auto train = read("foreign_train.pt", "train"), test = read("foreign_test.h5", "test");
  CHECK(train->require<std::string>("content") == "patches");
  CHECK(train->require<std::int64_t>("rows") == 60);
  for (const auto& [packet, expected] : {std::pair{train, "foreign_train_expected.h5"}, std::pair{test, "foreign_test_expected.h5"}}) {
    const auto converted = features::read_patch_features(packet->require<std::string>("path"));  // a verified patch_store file
    const auto reference = features::read_patch_features(features::FeatureFileRef{kFixtures / expected, "h5", {}});
    CHECK(converted.features.values == reference.features.values);  // float16 in the .pt: widened exactly
    CHECK(converted.labels == reference.labels);
    CHECK(converted.class_names == std::vector<std::string>{"ADI", "STR", "TUM"});
    CHECK(converted.paths[1].find("#1") != std::string::npos);
  }
  // The same rows written by patch_store give knn_eval the same numbers.
  const auto own = [&](const std::string& expected, const std::string& dataset) {
    auto content = features::read_patch_features(features::FeatureFileRef{kFixtures / expected, "h5", {}}, {"ADI", "STR", "TUM"});
    const fs::path file = folder / "own" / (dataset + ".h5");
    features::write_patch_features(file, content, features::StorageType::Float32);
    Packet p;
    p.kind = "feature_file";
    p.provenance.item_id = dataset;
    p.attributes = {{"path", file.string()}, {"content", std::string("patches")}, {"dataset", dataset},
                    {"encoder", std::string("foreign")}, {"rows", content.features.rows}, {"dim", content.features.dim}};
    return make_packet(std::move(p));
  };
  const auto from_reader = knn_accuracy(train, test, folder / "knn-reader");
  CHECK(from_reader.size() == 4);
  CHECK(from_reader.at("5-NN") > 0.6);  // three separated classes: well above chance
  CHECK(from_reader == knn_accuracy(own("foreign_train_expected.h5", "train"), own("foreign_test_expected.h5", "test"), folder / "knn-own"));

  // A file that names its classes keeps its names: class_names in another order is refused, not applied.
  const auto named = own("foreign_test_expected.h5", "named");
  CHECK_THROWS_WITH(StageHarness("use = \"patch_feature_reader\"\nfile = \"" + named->require<std::string>("path") +
                                 "\"\nclass_names = [\"TUM\", \"STR\", \"ADI\"]\n", folder / "reordered"),
                    Catch::Contains("names its classes itself"));

  // A label without a name stops the run before any work.
  CHECK_THROWS_WITH(StageHarness("use = \"patch_feature_reader\"\nfile = \"" + (kFixtures / "foreign_test.h5").string() +
                                 "\"\nclass_names = [\"ADI\", \"STR\"]\n", folder / "bad"),
                    Catch::Contains("foreign_test.h5") && Catch::Contains("label 2 has no name"));
}
