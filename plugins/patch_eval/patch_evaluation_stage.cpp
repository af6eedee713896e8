#include "patch_evaluation_stage.hpp"

#include <algorithm>
#include <sstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/evaluation_common/evaluation_kind.hpp"
#include "histoflow/features/feature_file_kind.hpp"

namespace histoflow::patch_eval {

PatchEvaluationStage::PatchEvaluationStage(const StageContext& context)
    : context_(context),
      train_dataset_(context.params.get_string("train_dataset")),
      test_dataset_(context.params.get_string("test_dataset")),
      test_fraction_(context.params.get_float("test_fraction")) {
  const std::int64_t seed = context.params.get_int("seed");
  seed_ = seed >= 0 ? static_cast<std::uint64_t>(seed) : context.experiment.seed;
  if (train_dataset_ == test_dataset_)
    throw std::invalid_argument("train_dataset and test_dataset are both '" + train_dataset_ + "'");
}

void PatchEvaluationStage::process(const PacketPtr& input, std::size_t, Emitter&) {
  const std::string& path = input->require<std::string>("path");
  const std::string& content = input->require<std::string>("content");
  if (content != "patches")
    throw std::invalid_argument("feature file '" + path + "' holds " + content +
                                " features; the patch-level evaluation needs a patch dataset (content \"patches\")");
  const std::string& dataset = input->require<std::string>("dataset");
  const std::string& encoder = input->require<std::string>("encoder");
  Source source{path, input->attribute<std::string>("output") ? *input->attribute<std::string>("output") : "",
                input->attribute<std::string>("weights_sha256") ? *input->attribute<std::string>("weights_sha256") : ""};
  std::map<std::string, Source>* into = dataset == train_dataset_ ? &train_ : dataset == test_dataset_ ? &test_ : nullptr;
  if (!into)
    throw std::invalid_argument("feature file '" + path + "' is dataset '" + dataset + "'; stage '" + context_.stage_id +
                                "' takes train_dataset = '" + train_dataset_ + "' and test_dataset = '" + test_dataset_ + "'");
  const auto [it, inserted] = into->emplace(encoder, source);
  if (!inserted)
    throw std::invalid_argument("two " + dataset + " feature files for encoder '" + encoder + "': '" + it->second.path +
                                "' and '" + path + "'");
}

void PatchEvaluationStage::evaluate_encoder(const std::string& encoder, const Source& train_source, const Source* test_source,
                                            std::vector<EncoderEvaluation>& done, std::vector<std::string>& class_names) {
  PatchFeatures train = features::read_patch_features(train_source.path);
  check_patch_dataset(train, "train features '" + train_source.path + "'");
  PatchFeatures test;
  EncoderEvaluation e;
  if (test_source) {
    test = features::read_patch_features(test_source->path);
    check_patch_dataset(test, "test features '" + test_source->path + "'");
    align_test_to_train(train, test, "'" + train_source.path + "'", "'" + test_source->path + "'");
    e.test_file = test_source->path;
    e.split = "separate test file";
  } else {
    const Split split = stratified_split(train.labels, train.class_names, test_fraction_, seed_);
    test = select_rows(train, split.second);
    train = select_rows(train, split.first);
    std::ostringstream words;
    words << "stratified split (test_fraction " << test_fraction_ << ", seed " << seed_ << ")";
    e.split = words.str();
  }
  e.stage_id = context_.stage_id;
  e.encoder = encoder;
  e.output = train_source.output;
  e.weights_sha256 = train_source.weights_sha256;
  e.train_file = train_source.path;
  e.train_rows = train.features.rows;
  e.folder = context_.experiment.output_dir / context_.stage_id / file_slug(encoder);
  e.methods = evaluate(train, test);
  write_encoder_report(e, test);
  if (class_names.empty()) class_names = train.class_names;
  done.push_back(std::move(e));
}

void PatchEvaluationStage::report_progress(const std::string& what, double fraction) const {
  throw_if_cancelled(context_);  // each report is a step of the evaluation
  if (!context_.progress || encoders_ == 0) return;
  context_.progress->report(current_encoder_ + " (" + std::to_string(encoder_index_ + 1) + "/" + std::to_string(encoders_) +
                                "): " + what,
                            (static_cast<double>(encoder_index_) + std::clamp(fraction, 0.0, 1.0)) / static_cast<double>(encoders_));
}

void PatchEvaluationStage::flush(Emitter& out) {
  std::vector<EncoderEvaluation> done;
  std::vector<std::string> class_names, failures;
  const auto fail = [&](const std::string& encoder, const std::string& message) {
    failures.push_back("encoder '" + encoder + "': " + message);
  };
  for (const auto& [encoder, source] : test_)
    if (!train_.count(encoder)) fail(encoder, "a test feature file ('" + source.path + "') but no train feature file");
  encoders_ = train_.size();
  std::size_t index = 0;
  for (const auto& [encoder, source] : train_) {
    encoder_index_ = index++;
    current_encoder_ = encoder;
    report_progress("reading features", 0.0);
    const auto test = test_.find(encoder);
    if (!test_.empty() && test == test_.end()) {
      fail(encoder, "a train feature file ('" + source.path + "') but no test feature file, while other encoders have one");
      continue;
    }
    try {
      evaluate_encoder(encoder, source, test == test_.end() ? nullptr : &test->second, done, class_names);
    } catch (const FatalError&) {
      throw;
    } catch (const RunCancelled&) {
      throw;
    } catch (const std::exception& error) {
      fail(encoder, error.what());
    }
  }
  if (!done.empty()) {
    const auto summary = context_.experiment.output_dir / context_.stage_id / "summary.md";
    write_file_atomically(summary, summary_markdown(context_.stage_id, done, class_names));
    results_ = {{"summary", std::filesystem::absolute(summary)}};
    for (const auto& e : done)
      for (const auto& m : e.methods) out.emit(method_evaluation(e, m));
  }
  if (train_.empty() && test_.empty()) failures.push_back("no feature files arrived: nothing to evaluate");
  // Each failure is its own error record; the last one is thrown so that flush reports the stage as failed.
  for (std::size_t i = 0; i + 1 < failures.size(); ++i)
    if (context_.errors) context_.errors->add({context_.stage_id, "", 0, failures[i]});
  if (!failures.empty()) throw std::invalid_argument(failures.back());
}

PortSpec feature_file_input() {
  return {"features", features::kFeatureFileKind,
          "patch-dataset feature files (patch_store): one per encoder and dataset; the `dataset` attribute says train or test"};
}

PortSpec evaluation_output() {
  return {"evaluations", evaluation_common::kEvaluationKind,
          "one packet per encoder and method: encoder, method, setting, mean:<metric>, output_dir (for comparison_table)",
          false, true};
}

std::vector<ParamSpec> common_params() {
  return {param_string("train_dataset", "train", "Value of the packets' `dataset` attribute that marks training features"),
          param_string("test_dataset", "test", "Value of the `dataset` attribute that marks test features"),
          param_float("test_fraction", 0.2, "Without test features: the fraction of each class held out as the test set", 0.01, 0.99),
          param_int("seed", -1, "Seed of the stratified splits; -1: the experiment's seed", -1),
          not_affecting_output(param_int("threads", 0, "LibTorch intra-op threads; 0: all cores", 0, 1024))};
}

}  // namespace histoflow::patch_eval
