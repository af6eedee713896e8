// The linear_probe stage: multinomial logistic regression on standardised features, lambda chosen on a
// validation split of the training set, refitted on all of it and scored on the test set.
#include <sstream>

#include "histoflow/threads.hpp"
#include "histoflow/patch_eval/linear_probe_sweep.hpp"
#include "patch_eval_stages.hpp"
#include "patch_evaluation_stage.hpp"

namespace histoflow::patch_eval {
namespace {

class LinearProbe final : public PatchEvaluationStage {
 public:
  explicit LinearProbe(const StageContext& context) : PatchEvaluationStage(context) {
    const Params& p = context.params;
    options_.lambdas = p.get_float_list("lambdas");
    if (options_.lambdas.empty()) throw std::invalid_argument("give at least one lambda");
    for (double l : options_.lambdas)
      if (!(l >= 0)) throw std::invalid_argument("lambdas must be >= 0, got " + std::to_string(l));
    options_.validation_fraction = p.get_float("validation_fraction");
    options_.fit.max_iterations = p.get_int("max_iterations");
    options_.fit.gradient_tolerance = p.get_float("tolerance");
    options_.fit.threads = resolve_thread_count(p.get_int("threads"));
  }

 protected:
  std::vector<MethodOutcome> evaluate(const PatchFeatures& train, const PatchFeatures& test) override {
    SweepOptions options = options_;
    options.seed = seed();
    options.on_fit = [this](std::size_t fit, std::size_t fits, double lambda) {
      std::ostringstream what;
      what << (fit + 1 < fits ? "lambda sweep, fit " : "refit, fit ") << fit + 1 << "/" << fits << " (lambda " << lambda << ")";
      report_progress(what.str(), static_cast<double>(fit) / static_cast<double>(fits));
    };
    const LinearProbeResult result = run_linear_probe(train, test, options);
    nlohmann::json sweep = nlohmann::json::array();
    for (const auto& point : result.sweep)
      sweep.push_back({{"lambda", point.lambda}, {"validation_balanced_accuracy", point.validation_balanced_accuracy},
                       {"evaluations", point.evaluations}});
    const double n = static_cast<double>(train.features.rows);
    nlohmann::json details = {{"lambda", result.chosen_lambda},
                              {"sklearn_C", result.chosen_lambda > 0 ? 1.0 / (result.chosen_lambda * n) : 0.0},
                              {"objective", "mean cross-entropy + lambda/2 ||W||^2 on standardised features"},
                              {"sweep", sweep},
                              {"final_loss", result.model.loss},
                              {"evaluations", result.model.evaluations}};
    return {MethodOutcome{"linear", result.test_predictions, details, {}, {}}};
  }

 private:
  SweepOptions options_;
};

}  // namespace

void register_linear_probe(Registry& registry) {
  StageContract c;
  c.type = "linear_probe";
  c.summary = "Linear probe on patch features: multinomial logistic regression (L-BFGS), lambda swept on a validation split";
  c.doc =
      "At end of stream, for every encoder: features are standardised (training mean and standard deviation), each\n"
      "lambda is fitted on a stratified (1 - validation_fraction) part of the training set and scored by balanced\n"
      "accuracy on the rest; the best lambda is refitted on the whole training set and scored on the test set.\n"
      "Objective: mean cross-entropy + lambda/2 ||W||^2 (bias not penalised), full batch L-BFGS with strong-Wolfe line\n"
      "search; scikit-learn's C is 1 / (lambda * n_train). One lambda skips the sweep. Outputs as knn_eval, with the\n"
      "sweep in metrics.json; emits one evaluation packet per encoder, method \"linear\".";
  c.inputs = {feature_file_input()};
  c.outputs = {evaluation_output()};
  c.params = {param_float_list("lambdas", {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1}, "L2 strengths to sweep (one: no sweep)"),
              param_float("validation_fraction", 0.2, "Fraction of each training class held out to choose lambda", 0.01, 0.99),
              param_int("max_iterations", 500, "L-BFGS iterations per fit", 1, 100000),
              param_float("tolerance", 1e-6, "Stop when the largest gradient component falls below it", 0, 1)};
  for (auto& p : common_params()) c.params.push_back(std::move(p));
  c.example = "[stage.linear]\nuse = \"linear_probe\"\ninputs = [\"store_train\", \"store_test\"]\n";
  c.needs_every_item = true;  // the whole dataset
  register_stage<LinearProbe>(registry, std::move(c));
}

}  // namespace histoflow::patch_eval
