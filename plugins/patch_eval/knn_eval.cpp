// The knn_eval stage: k-NN classification of test patches by their training neighbours, for several k,
// with majority and temperature-weighted (DINO) voting.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "histoflow/patch_eval/knn.hpp"
#include "histoflow/threads.hpp"
#include "patch_eval_stages.hpp"
#include "patch_evaluation_stage.hpp"

namespace histoflow::patch_eval {
namespace {

std::string temperature_text(double t) {
  std::ostringstream text;
  text << t;
  return text.str();
}

class KnnEval final : public PatchEvaluationStage {
 public:
  explicit KnnEval(const StageContext& context) : PatchEvaluationStage(context) {
    const Params& p = context.params;
    options_.ks.clear();  // KnnOptions starts with k = 20
    for (double k : p.get_float_list("k")) {
      if (k < 1 || k != std::floor(k)) throw std::invalid_argument("k values must be whole numbers >= 1, got " + std::to_string(k));
      options_.ks.push_back(static_cast<std::int64_t>(k));
    }
    if (options_.ks.empty()) throw std::invalid_argument("give at least one k");
    options_.temperature = p.get_float("temperature");
    options_.query_block = p.get_int("query_block");
    options_.train_block = p.get_int("train_block");
    options_.threads = resolve_thread_count(p.get_int("threads"));
    voting_ = p.get_string("voting");
  }

 protected:
  std::vector<MethodOutcome> evaluate(const PatchFeatures& train, const PatchFeatures& test) override {
    for (std::int64_t k : options_.ks)
      if (k > train.features.rows)
        throw std::invalid_argument("k = " + std::to_string(k) + " is larger than the training set (" +
                                    std::to_string(train.features.rows) + " rows)");
    KnnOptions options = options_;
    options.on_queries = [this](std::int64_t done, std::int64_t total) {
      report_progress("k-NN, " + std::to_string(done) + "/" + std::to_string(total) + " test rows",
                      static_cast<double>(done) / static_cast<double>(std::max<std::int64_t>(total, 1)));
    };
    const auto predictions = knn_classify(train.features, train.labels, static_cast<std::int64_t>(train.class_names.size()),
                                          test.features, options);
    std::vector<MethodOutcome> methods;
    for (const auto& p : predictions) {
      const std::string name = std::to_string(p.k) + "-NN";
      if (voting_ != "weighted")
        methods.push_back({name, p.majority, {{"k", p.k}, {"voting", "majority"}, {"similarity", "cosine"}}, {}, {}});
      if (voting_ != "majority")
        methods.push_back({name + " (T=" + temperature_text(options_.temperature) + ")", p.weighted,
                           {{"k", p.k}, {"voting", "weighted"}, {"temperature", options_.temperature}, {"similarity", "cosine"}}, {}, {}});
    }
    return methods;
  }

 private:
  KnnOptions options_;
  std::string voting_;
};

}  // namespace

void register_knn_eval(Registry& registry) {
  StageContract c;
  c.type = "knn_eval";
  c.summary = "k-NN classification of patch features (cosine, several k, majority and DINO-weighted voting)";
  c.doc =
      "At end of stream, for every encoder: training features are compared with each test patch by cosine similarity\n"
      "(L2-normalised rows, matrix products in query_block x train_block tiles, so memory stays bounded), the k most\n"
      "similar training patches vote (majority, ties to the lower class index, as scikit-learn; and weighted by\n"
      "exp(similarity / temperature) as in DINO). Without test features the test set is a stratified split of the\n"
      "training features. Writes <output>/<stage>/<encoder>/{predictions.csv, metrics.json, confusion_<method>.csv/png}\n"
      "and <output>/<stage>/summary.md; emits one evaluation packet per encoder and method (\"20-NN\", \"20-NN (T=0.07)\").\n"
      "Errors: different class sets (naming them), different widths, an empty class, k larger than the training set.";
  c.inputs = {feature_file_input()};
  c.outputs = {evaluation_output()};
  c.params = {param_float_list("k", {20}, "Numbers of neighbours (whole numbers), one evaluation each"),
              param_float("temperature", 0.07, "Temperature T of the weighted vote exp(similarity / T)", 1e-6, 100),
              param_string("voting", "both", "Which votes to report", {"both", "majority", "weighted"}),
              not_affecting_output(param_int("query_block", 1024, "Test rows per similarity block (memory: query_block x train_block floats)", 1, 1 << 20)),
              not_affecting_output(param_int("train_block", 16384, "Training rows per similarity block", 1, 1 << 24))};
  for (auto& p : common_params()) c.params.push_back(std::move(p));
  c.example = "[stage.knn]\nuse = \"knn_eval\"\ninputs = [\"store_train\", \"store_test\"]\nk = [10, 20]\n";
  c.needs_every_item = true;  // the whole dataset
  register_stage<KnnEval>(registry, std::move(c));
}

}  // namespace histoflow::patch_eval
