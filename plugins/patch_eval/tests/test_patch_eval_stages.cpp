#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "histoflow/features/feature_file.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/registry.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
namespace fs = std::filesystem;

namespace {

void load_plugin() {
  testing::shared_loader();
  REQUIRE(Registry::instance().find("knn_eval"));
}


// Well separated clusters: class c sits around 3 * e_c in `dim` dimensions.
features::PatchFeatures clusters(std::vector<std::string> classes, std::int64_t per_class, std::int64_t dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  features::PatchFeatures p;
  p.class_names = std::move(classes);
  p.features.dim = dim;
  for (std::int64_t c = 0; c < static_cast<std::int64_t>(p.class_names.size()); ++c)
    for (std::int64_t i = 0; i < per_class; ++i) {
      for (std::int64_t d = 0; d < dim; ++d) p.features.values.push_back((d == c ? 3.0f : 0.0f) + noise(rng));
      p.labels.push_back(c);
      p.paths.push_back(p.class_names[static_cast<std::size_t>(c)] + "/" + std::to_string(i) + ".png");
    }
  p.features.rows = static_cast<std::int64_t>(p.labels.size());
  return p;
}

PacketPtr feature_file(const fs::path& file, const features::PatchFeatures& content, const std::string& encoder,
                       const std::string& dataset) {
  features::write_patch_features(file, content, features::StorageType::Float32);
  Packet p;
  p.kind = "feature_file";
  p.provenance.item_id = dataset;
  p.attributes = {{"path", file.string()}, {"content", std::string("patches")}, {"encoder", encoder},
                  {"weights_sha256", std::string("abc")}, {"output", std::string("cls")},
                  {"rows", content.features.rows}, {"dim", content.features.dim}, {"dataset", dataset}};
  return make_packet(std::move(p));
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::vector<std::string> kClasses{"ADI", "STR", "TUM"};

}  // namespace

TEST_CASE("knn_eval: two encoders, train and test files, one evaluation packet per encoder and method") {
  load_plugin();
  const fs::path dir = testing::fresh_folder("patch-eval-knn"), out = dir / "run";
  StageHarness h("use = \"knn_eval\"\nk = [1, 5]\nthreads = 1\nquery_block = 4\ntrain_block = 7", out);
  for (const std::string encoder : {"enc_a", "enc_b"}) {
    h.push(feature_file(dir / (encoder + "_train.h5"), clusters(kClasses, 12, 6, 1), encoder, "train"));
    h.push(feature_file(dir / (encoder + "_test.h5"), clusters(kClasses, 5, 6, 2), encoder, "test"));
  }
  const auto evaluations = h.flush();
  REQUIRE(evaluations.size() == 2 * 2 * 2);
  std::set<std::string> methods;
  for (const auto& e : evaluations) {
    CHECK(e->kind == "evaluation");
    CHECK(e->require<std::string>("setting") == "test");
    CHECK(e->require<double>("mean:balanced_accuracy") == 1.0);  // separable clusters
    CHECK(e->require<double>("mean:accuracy") == 1.0);
    CHECK(e->require<double>("mean:weighted_f1") == 1.0);
    CHECK(e->require<std::int64_t>("test_rows") == 15);
    methods.insert(e->require<std::string>("method"));
  }
  CHECK(methods == std::set<std::string>{"1-NN", "1-NN (T=0.07)", "5-NN", "5-NN (T=0.07)"});
  const fs::path folder = out / "under_test" / "enc_a";
  CHECK(evaluations[0]->require<std::string>("output_dir") == folder.string());
  const auto metrics = nlohmann::json::parse(slurp(folder / "metrics.json"));
  CHECK(metrics["methods"]["5-NN"]["per_class"]["TUM"]["recall"] == 1.0);
  CHECK(metrics["split"] == "separate test file");
  const std::string predictions = slurp(folder / "predictions.csv");
  CHECK(predictions.rfind("row,path,true,1-NN,1-NN (T=0.07),5-NN,5-NN (T=0.07)\n0,ADI/0.png,ADI,ADI,ADI,ADI,ADI\n", 0) == 0);
  CHECK(slurp(folder / "confusion_5-NN_T0.07.csv") == "true\\predicted,ADI,STR,TUM\nADI,5,0,0\nSTR,0,5,0\nTUM,0,0,5\n");
  CHECK(slurp(folder / "confusion_5-NN.png").rfind("\x89PNG", 0) == 0);
  const std::string summary = slurp(out / "under_test" / "summary.md");
  CHECK(summary.find("| enc_b | 5-NN (T=0.07) | 100.00 | 100.00 | 100.00 | 36 | 15 | separate test file |") != std::string::npos);
}

TEST_CASE("linear_probe: without a test file, a stratified split of the training file") {
  load_plugin();
  const fs::path dir = testing::fresh_folder("patch-eval-linear"), out = dir / "run";
  StageHarness h("use = \"linear_probe\"\nlambdas = [0.1, 0.001]\ntest_fraction = 0.25\nseed = 4\nthreads = 1", out);
  h.push(feature_file(dir / "train.h5", clusters(kClasses, 20, 5, 3), "enc", "train"));
  const auto evaluations = h.flush();
  REQUIRE(evaluations.size() == 1);
  CHECK(evaluations[0]->require<std::string>("method") == "linear");
  CHECK(evaluations[0]->require<std::int64_t>("test_rows") == 15);
  CHECK(evaluations[0]->require<std::int64_t>("train_rows") == 45);
  CHECK(evaluations[0]->require<double>("mean:balanced_accuracy") == 1.0);
  const auto metrics = nlohmann::json::parse(slurp(out / "under_test" / "enc" / "metrics.json"));
  const auto& details = metrics["methods"]["linear"]["details"];
  CHECK(details["sweep"].size() == 2);
  CHECK(details["sklearn_C"].get<double>() == Approx(1.0 / (details["lambda"].get<double>() * 45)));
  CHECK(metrics["split"].get<std::string>().find("stratified split (test_fraction 0.25, seed 4)") == 0);
}

TEST_CASE("patch evaluation bad inputs: clear errors naming files, classes and sizes") {
  load_plugin();
  const fs::path dir = testing::fresh_folder("patch-eval-bad"), out = dir / "run";
  SECTION("train and test with different class sets") {
    StageHarness h("use = \"knn_eval\"", out);
    h.push(feature_file(dir / "train.h5", clusters(kClasses, 25, 4, 1), "enc", "train"));
    h.push(feature_file(dir / "test.h5", clusters({"ADI", "MUC", "TUM"}, 3, 4, 2), "enc", "test"));
    CHECK_THROWS_WITH(h.flush(), Catch::Contains("different class sets") && Catch::Contains("only in train") &&
                                     Catch::Contains("'STR'") && Catch::Contains("'MUC'") && Catch::Contains("encoder 'enc'"));
  }
  SECTION("features of different widths") {
    StageHarness h("use = \"linear_probe\"", out);
    h.push(feature_file(dir / "train.h5", clusters(kClasses, 5, 4, 1), "enc", "train"));
    h.push(feature_file(dir / "test.h5", clusters(kClasses, 3, 6, 2), "enc", "test"));
    CHECK_THROWS_WITH(h.flush(), Catch::Contains("different widths") && Catch::Contains("has 4 dimensions") &&
                                     Catch::Contains("has 6"));
  }
  SECTION("an empty class") {
    auto train = clusters(kClasses, 5, 4, 1);
    train.class_names.push_back("MUC");
    StageHarness h("use = \"knn_eval\"\nk = [3]", out);
    h.push(feature_file(dir / "train.h5", train, "enc", "train"));
    CHECK_THROWS_WITH(h.flush(), Catch::Contains("empty class 'MUC'") && Catch::Contains("train.h5"));
  }
  SECTION("k larger than the training set") {
    StageHarness h("use = \"knn_eval\"\nk = [20]", out);
    h.push(feature_file(dir / "train.h5", clusters(kClasses, 4, 4, 1), "enc", "train"));
    h.push(feature_file(dir / "test.h5", clusters(kClasses, 2, 4, 2), "enc", "test"));
    CHECK_THROWS_WITH(h.flush(), Catch::Contains("k = 20 is larger than the training set (12 rows)"));
  }
  SECTION("a k that is not a whole number is refused when the stage is built") {
    CHECK_THROWS_WITH(StageHarness("use = \"knn_eval\"\nk = [2.5]", out), Catch::Contains("whole numbers"));
  }
  SECTION("a packet of an unknown dataset is an error record for that packet") {
    StageHarness h("use = \"knn_eval\"", out);
    CHECK_THROWS_WITH(h.push(feature_file(dir / "val.h5", clusters(kClasses, 4, 4, 1), "enc", "val")),
                      Catch::Contains("dataset 'val'"));
  }
}
