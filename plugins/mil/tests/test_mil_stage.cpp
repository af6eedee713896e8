// The mil_cv and comparison_table stages on real feature files, and every bad input the issue names.
#include <catch2/catch.hpp>

#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "histoflow/features/feature_file.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/registry.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
namespace fs = std::filesystem;

namespace {

void load_plugins() {
  testing::shared_loader();
  REQUIRE(Registry::instance().find("mil_cv"));
  REQUIRE(Registry::instance().find("comparison_table"));
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct SlideSpec {
  std::string id, patient, label, cohort = "train";
  std::int64_t tiles = 24;
  std::string encoder = "resnet50_trunc";
};

// A feature file and the packet slide_store would emit for it. Label-1 slides carry a signal.
PacketPtr feature_packet(const fs::path& folder, const SlideSpec& s, std::uint64_t seed, bool with_label = true) {
  const std::int64_t dim = 8;
  features::SlideFeatures content;
  content.features.rows = s.tiles;
  content.features.dim = dim;
  std::mt19937_64 random(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (std::int64_t i = 0; i < s.tiles * dim; ++i) content.features.values.push_back(noise(random));
  if (s.label == "1")
    for (std::int64_t t = 0; t < s.tiles / 4 + 1 && t < s.tiles; ++t)
      for (int d = 0; d < 3; ++d) content.features.values[t * dim + d] += 3.0f;
  for (std::int64_t t = 0; t < s.tiles; ++t) content.coords.push_back(224 * (t % 6)), content.coords.push_back(224 * (t / 6));
  content.attributes["encoder"] = s.encoder;
  const fs::path file = folder / (s.id + ".h5");
  features::write_slide_features(file, content, features::StorageType::Float32);
  Packet p;
  p.kind = "feature_file";
  p.provenance.item_id = s.id;
  p.attributes = {{"path", file.string()}, {"content", std::string("slide")}, {"encoder", s.encoder},
                  {"weights_sha256", std::string("ab12cd34ef56") + (s.encoder == "resnet50_trunc" ? "00" : "11")},
                  {"output", std::string("pooled")}, {"rows", s.tiles}, {"dim", dim}, {"slide_id", s.id},
                  {"patient", s.patient}, {"cohort", s.cohort}};
  if (with_label) p.attributes["label:label"] = s.label;
  return make_packet(std::move(p));
}

std::vector<SlideSpec> cohort(int patients, int external) {
  std::vector<SlideSpec> slides;
  for (int p = 0; p < patients; ++p) {
    slides.push_back({"S" + std::to_string(p), "P" + std::to_string(p), std::to_string(p % 2)});
    if (p % 4 == 0) slides.push_back({"S" + std::to_string(p) + "b", "P" + std::to_string(p), std::to_string(p % 2)});
  }
  for (int e = 0; e < external; ++e)
    slides.push_back({"E" + std::to_string(e), "EP" + std::to_string(e), std::to_string(e % 2), "external"});
  return slides;
}

const char* kQuick = "use = \"mil_cv\"\nfolds = 3\nepochs = 10\npatience = 4\nlearning_rate = 0.002\nhidden_dim = 32\n"
                     "bootstrap = 100\nmax_tiles = 16\n";

}  // namespace

TEST_CASE("mil_cv cross-validates stored features, scores the external cohort and writes its reports", "[mil][stage]") {
  load_plugins();
  const fs::path folder = testing::fresh_folder("mil-stage");
  StageHarness h(std::string(kQuick) + "heatmaps = false\n", folder / "out", 11);
  std::uint64_t seed = 1;
  for (const auto& s : cohort(18, 6)) REQUIRE(h.push(feature_packet(folder / "features", s, seed++)).empty());
  // Bad inputs that are recorded, not fatal: no label, zero tiles, a file that fails verification.
  REQUIRE(h.push(feature_packet(folder / "features", {"unlabelled", "PX", "1"}, 99, false)).empty());
  REQUIRE(h.push(feature_packet(folder / "features", {"empty", "PY", "0", "train", 0}, 98)).empty());
  const auto broken = feature_packet(folder / "features", {"broken", "PZ", "1"}, 97);
  {
    std::fstream f(*broken->attribute<std::string>("path"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-16, std::ios::end);
    f.write("corruptcorrupt!!", 16);
  }
  CHECK_THROWS_WITH(h.push(broken), Catch::Contains("slide 'broken'") && Catch::Contains("cannot be used"));

  const auto out = h.flush();
  REQUIRE(out.size() == 3);
  std::map<std::string, PacketPtr> by_setting;
  for (const auto& p : out) by_setting[p->require<std::string>("setting")] = p;
  REQUIRE(by_setting.count("in-domain"));
  REQUIRE(by_setting.count("external"));
  REQUIRE(by_setting.count("external (ensemble)"));
  const auto& in_domain = *by_setting["in-domain"];
  CHECK(in_domain.require<std::string>("encoder") == "resnet50_trunc");
  CHECK(in_domain.require<std::string>("method") == "gated_attention");
  CHECK(in_domain.require<double>("mean:auroc") >= 0.9);
  CHECK(in_domain.attribute<double>("sd:auroc"));
  CHECK(in_domain.attribute<double>("ci_low:f1"));
  CHECK(by_setting["external (ensemble)"]->attribute<double>("sd:auroc") == nullptr);

  fs::path stage_dir;  // <output>/<stage id>
  for (const auto& entry : fs::directory_iterator(folder / "out")) stage_dir = entry.path();
  for (const char* file : {"predictions.csv", "attention.csv", "metrics.json", "summary.md", "roc.png", "reproduce.json",
                           "models/fold_0.safetensors", "models/fold_2.safetensors"})
    CHECK(fs::exists(stage_dir / file));
  const auto summary = read_text(stage_dir / "summary.md");
  CHECK_THAT(summary, Catch::Contains("`unlabelled`: no label in column 'label'"));
  CHECK_THAT(summary, Catch::Contains("`empty`: no tiles"));
  CHECK_THAT(summary, Catch::Contains("`broken`: slide 'broken'"));
  // summary.md ends with the files this run wrote, each of which exists; the harness has no resolved graph.
  const auto files_at = summary.find("\n## Files\n");
  REQUIRE(files_at != std::string::npos);
  std::istringstream files(summary.substr(files_at));
  int listed = 0;
  for (std::string line; std::getline(files, line);) {
    if (line.rfind("- `", 0) != 0) continue;
    const std::string name = line.substr(3, line.find('`', 3) - 3);
    INFO(name);
    CHECK(fs::exists(stage_dir / name));
    ++listed;
  }
  CHECK(listed == 10);  // summary, predictions, attention, metrics, roc.png, roc.csv, 3 models, reproduce
  CHECK_THAT(summary.substr(files_at), !Catch::Contains("resolved_graph.toml"));
  CHECK_THAT(summary, Catch::Contains("| peak RSS MiB |"));
  const auto predictions = read_text(stage_dir / "predictions.csv");
  CHECK_THAT(predictions, Catch::StartsWith("setting,fold,bag,patient,slides,label,predicted,score_0,score_1\n"));
  CHECK_THAT(predictions, Catch::Contains("external (ensemble),-1,E0,EP0,E0,0,"));
  const auto metrics = nlohmann::json::parse(read_text(stage_dir / "metrics.json"));
  CHECK(metrics["in-domain"]["per_fold"].size() == 3);
  // roc.csv: every curve's points, the pooled and ensemble curves with the CI of their AUROC from metrics.json.
  const auto roc = read_text(stage_dir / "roc.csv");
  CHECK_THAT(roc, Catch::StartsWith("curve,setting,fold,positive_class,auroc,ci_low,ci_high,fpr,tpr\n"));
  CHECK_THAT(roc, Catch::Contains("fold 2 (in-domain test),in-domain,2,1,"));
  std::ostringstream pooled_ci;
  pooled_ci << std::setprecision(8) << metrics["in-domain"]["ci_low"]["auroc"].get<double>() << ','
            << metrics["in-domain"]["ci_high"]["auroc"].get<double>() << ',';
  CHECK_THAT(roc, Catch::Contains("\"in-domain, pooled folds\",in-domain,,1,"));
  CHECK_THAT(roc, Catch::Contains(pooled_ci.str()));
  CHECK_THAT(roc, Catch::Contains("\"external, fold-ensemble\",external (ensemble),,1,"));
  CHECK_THAT(summary, Catch::Contains("in-domain, pooled folds: AUROC "));
  CHECK(metrics["skipped"].size() == 3);
  CHECK(metrics["training"][0]["peak_resident_mib"].get<std::int64_t>() > 0);
  CHECK(metrics["peak_resident_mib_training"].get<std::int64_t>() >= metrics["resident_mib_before_training"].get<std::int64_t>());
  const auto reproduce = nlohmann::json::parse(read_text(stage_dir / "reproduce.json"));
  CHECK(reproduce["parameters"]["epochs"] == 10);
  CHECK(reproduce["parameters"]["aggregator"] == "gated_attention");  // defaults filled in
  CHECK(reproduce["models"][0]["sha256"].get<std::string>().size() == 64);
  CHECK(reproduce["encoder_weights_sha256"] == "ab12cd34ef5600");
  CHECK(reproduce["resolved_graph"].is_null());  // none to copy in the harness
}

TEST_CASE("mil_cv gives the same numbers for the same seed, whatever the arrival order", "[mil][stage]") {
  load_plugins();
  const fs::path folder = testing::fresh_folder("mil-determinism");
  auto slides = cohort(9, 0);
  std::vector<PacketPtr> packets;
  std::uint64_t seed = 1;
  for (const auto& s : slides) packets.push_back(feature_packet(folder / "features", s, seed++));
  const auto run = [&](bool reversed, const std::string& bag) {
    StageHarness h("use = \"mil_cv\"\nfolds = 3\nepochs = 3\nhidden_dim = 16\nbootstrap = 50\nmax_tiles = 8\n"
                   "heatmaps = false\nbag = \"" + bag + "\"\n", folder / ("out" + bag + std::to_string(reversed)), 5);
    auto ordered = packets;
    if (reversed) std::reverse(ordered.begin(), ordered.end());
    for (const auto& p : ordered) h.push(p);
    const auto out = h.flush();
    REQUIRE(out.size() == 1);
    return std::make_pair(out[0]->require<double>("mean:auroc"), out[0]->require<double>("ci_low:balanced_accuracy"));
  };
  CHECK(run(false, "slide") == run(true, "slide"));
  CHECK(run(false, "patient") == run(true, "patient"));
}

TEST_CASE("mil_cv rejects inputs that cannot give a valid benchmark, with the reason", "[mil][stage]") {
  load_plugins();
  const fs::path folder = testing::fresh_folder("mil-bad");
  std::uint64_t seed = 1;
  SECTION("feature files from two encoders in one stage") {
    StageHarness h(kQuick, folder / "out");
    h.push(feature_packet(folder, {"A", "PA", "0"}, seed++));
    SlideSpec other{"B", "PB", "1"};
    other.encoder = "dinov2_vits14";
    CHECK_THROWS_AS(h.push(feature_packet(folder, other, seed++)), FatalError);
    CHECK_THROWS_WITH(h.push(feature_packet(folder, other, seed++)), Catch::Contains("two encoders") &&
                                                                          Catch::Contains("slide 'B' has dinov2_vits14"));
  }
  SECTION("a label column that no slide has") {
    StageHarness h(std::string(kQuick) + "label_column = \"msi\"\n", folder / "out");
    for (const auto& s : cohort(6, 0)) h.push(feature_packet(folder, s, seed++));
    CHECK_THROWS_WITH(h.flush(), Catch::Contains("label column 'msi' is missing") && Catch::Contains("provides: label"));
  }
  SECTION("a class with fewer patients than folds: a test fold would hold one class") {
    StageHarness h(kQuick, folder / "out");
    for (const auto& s : std::vector<SlideSpec>{{"A", "PA", "0"}, {"B", "PB", "0"}, {"C", "PC", "0"}, {"D", "PD", "1"}, {"E", "PE", "1"}})
      h.push(feature_packet(folder, s, seed++));
    CHECK_THROWS_WITH(h.flush(), Catch::Contains("class '1' has 2 patient(s) for 3 folds"));
  }
  SECTION("a single label") {
    StageHarness h(kQuick, folder / "out");
    for (const auto& s : std::vector<SlideSpec>{{"A", "PA", "1"}, {"B", "PB", "1"}}) h.push(feature_packet(folder, s, seed++));
    CHECK_THROWS_WITH(h.flush(), Catch::Contains("every labelled slide has label '1'"));
  }
}

TEST_CASE("comparison_table prints one row per encoder from any evaluation stages", "[mil][comparison]") {
  load_plugins();
  const fs::path folder = testing::fresh_folder("mil-compare");
  StageHarness h("use = \"comparison_table\"\nprint = false\n", folder);
  const auto evaluation = [](std::string encoder, std::string method, std::string setting, std::map<std::string, double> values) {
    Packet p;
    p.kind = "evaluation";
    p.attributes = {{"encoder", encoder}, {"method", method}, {"setting", setting}};
    for (const auto& [k, v] : values) p.attributes[k] = v;
    return make_packet(std::move(p));
  };
  h.push(evaluation("resnet50_trunc", "gated_attention", "in-domain", {{"mean:auroc", 0.9}, {"sd:auroc", 0.05}}));
  h.push(evaluation("dinov2_vits14", "gated_attention", "in-domain", {{"mean:auroc", 0.95}, {"sd:auroc", 0.01}}));
  h.push(evaluation("dinov2_vits14", "knn", "test", {{"mean:accuracy", 0.8}, {"mean:weighted_f1", 0.79}}));
  CHECK_THROWS_WITH(h.push(evaluation("x", "y", "z", {})), Catch::Contains("no mean:<metric>"));
  h.flush();
  const auto md = read_text(folder / "comparison.md");
  CHECK_THAT(md, Catch::Contains("| encoder | gated_attention · in-domain · auroc | knn · test · accuracy | knn · test · weighted_f1 |"));
  CHECK_THAT(md, Catch::Contains("| dinov2_vits14 | 0.950 ± 0.010 | 0.800 | 0.790 |"));
  CHECK_THAT(md, Catch::Contains("| resnet50_trunc | 0.900 ± 0.050 | – | – |"));
  CHECK_THAT(read_text(folder / "comparison.csv"), Catch::Contains("dinov2_vits14,knn,test,accuracy,0.8,,,,"));
}

TEST_CASE("comparison_table shows a reference table beside the run and the differences", "[mil][comparison]") {
  load_plugins();
  const fs::path folder = testing::fresh_folder("mil-compare-reference");
  std::ofstream(folder / "paper.csv") << "encoder,method,setting,metric,value,source\n"
                                         "dinov2_vits14,transformer,in-domain,auroc,0.89,Roth et al. 2024\n"
                                         "dinov2_vits14,transformer,external,auroc,0.85,Roth et al. 2024\n";
  StageHarness h("use = \"comparison_table\"\nprint = false\nreference = \"" + (folder / "paper.csv").string() + "\"\n", folder);
  for (const auto& [setting, auroc] : {std::pair{"in-domain", 0.9}, {"external", 0.8}}) {
    Packet p;
    p.kind = "evaluation";
    p.attributes = {{"encoder", std::string("dinov2_vits14")}, {"method", std::string("transformer")}, {"setting", std::string(setting)},
                    {"mean:auroc", auroc}, {"sd:auroc", 0.02}};
    h.push(make_packet(std::move(p)));
  }
  h.flush();
  const auto md = read_text(folder / "comparison.md");
  CHECK_THAT(md, Catch::Contains("| dinov2_vits14 (reference) | 0.890 | 0.850 |"));
  CHECK_THAT(md, Catch::Contains("| dinov2_vits14 | 0.900 ± 0.020 | 0.800 ± 0.020 |"));
  CHECK_THAT(md, Catch::Contains("## Against the reference"));
  CHECK_THAT(md, Catch::Contains("| dinov2_vits14 | transformer · in-domain · auroc | 0.900 | 0.890 | +0.010 | Roth et al. 2024 |"));
  CHECK_THAT(md, Catch::Contains("| dinov2_vits14 | transformer · external · auroc | 0.800 | 0.850 | -0.050 | Roth et al. 2024 |"));
  CHECK_THAT(read_text(folder / "comparison.csv"), Catch::Contains("dinov2_vits14 (reference),transformer,external,auroc,0.85,,,,reference"));
  CHECK_THAT(read_text(folder / "comparison_vs_reference.csv"),
             Catch::Contains("dinov2_vits14,transformer,in-domain,auroc,0.9,0.89,0.01"));
  // A damaged reference fails the stage when it is made, before any work.
  std::ofstream(folder / "bad.csv") << "encoder,method,setting,metric,value,source\nx,y,z,auroc,high,s\n";
  CHECK_THROWS_WITH(StageHarness("use = \"comparison_table\"\nreference = \"" + (folder / "bad.csv").string() + "\"\n", folder),
                    Catch::Contains("bad.csv' line 2: value 'high' is not a number"));
}

TEST_CASE("the slide benchmark graph: gated attention reaches AUROC >= 0.9 on a small generated cohort", "[mil][graph][slow]") {
  // Generated slides (label 1: the slide holds tumour), tiled, encoded by two backbones with synthetic
  // weights, stored, cross-validated, compared: the whole graph, kept small and on the CPU.
  const fs::path folder = testing::fresh_folder("mil-graph");
  const std::string generate = std::string(HISTOFLOW_SYNTH_TOOL) + " --out " + (folder / "cohort").string() +
                               " --slides 16 --external 6 --width 2048 --height 1536 --without-mpp 0"
                               " --patches-per-class 0 --threads 2 > " + (folder / "generate.log").string() + " 2>&1";
  REQUIRE(std::system(generate.c_str()) == 0);
  const std::string run = std::string(HISTOFLOW_FLOWRUN) + " run " + HISTOFLOW_SOURCE_DIR + "/graphs/slide_benchmark.toml" +
                          " --progress off --set slides.manifest=" + (folder / "cohort/manifest.csv").string() +
                          " --set external_slides.manifest=" + (folder / "cohort/external/manifest.csv").string() +
                          " --set experiment.output=" + (folder / "run").string() +
                          " --set tiles.mpp=2.0 --set tiles.size=64 --set encode_resnet50_trunc.input_size=64"
                          " --set encode_dinov2_vits14.input_size=56 --set mil.folds=3 > " + (folder / "run.log").string() + " 2>&1";
  const int status = std::system(run.c_str());
  INFO(read_text(folder / "run.log"));
  REQUIRE(status == 0);
  CHECK_THAT(read_text(folder / "run.log"), Catch::Contains("| encoder | gated_attention · in-domain · auroc"));
  for (const char* stage : {"gated_attention_resnet50_trunc", "gated_attention_dinov2_vits14"}) {
    INFO(stage);
    const auto metrics = nlohmann::json::parse(read_text(folder / "run" / stage / "metrics.json"));
    CHECK(metrics["bags"] == 16);
    CHECK(metrics["external_bags"] == 6);
    CHECK(metrics["in-domain"]["mean"]["auroc"].get<double>() >= 0.9);
    CHECK(fs::exists(folder / "run" / stage / "heatmaps" / "train_000.png"));
    CHECK(read_text(folder / "run" / stage / "resolved_graph.toml") == read_text(folder / "run" / "resolved_graph.toml"));
  }
  CHECK(fs::exists(folder / "run" / "comparison.md"));
}
