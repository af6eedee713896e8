#pragma once
// What knn_eval and linear_probe share: collect "feature_file" packets (patch datasets) by encoder and by
// dataset (train / test), and at end of stream evaluate every encoder, write its report and emit one
// "evaluation" packet per method. Without a test file for any encoder, the test set is a stratified split
// of the training file. A failing encoder becomes an error record naming it; the others are still evaluated.
#include <map>
#include <string>
#include <vector>

#include "evaluation_report.hpp"
#include "histoflow/contract.hpp"
#include "histoflow/stage.hpp"

namespace histoflow::patch_eval {

class PatchEvaluationStage : public Stage {
 public:
  explicit PatchEvaluationStage(const StageContext& context);
  void process(const PacketPtr& input, std::size_t port, Emitter& out) override;
  void flush(Emitter& out) override;
  std::vector<StageResult> results() const override { return results_; }

 protected:
  // The methods' predictions for `test` (already checked and aligned with `train`).
  virtual std::vector<MethodOutcome> evaluate(const PatchFeatures& train, const PatchFeatures& test) = 0;
  const StageContext& context() const { return context_; }
  std::uint64_t seed() const { return seed_; }
  // From evaluate(): where it is within the current encoder (`fraction` of its work, in [0, 1]); shown on the
  // run's progress line as "<encoder> (2/3): <what>".
  void report_progress(const std::string& what, double fraction) const;

 private:
  struct Source {
    std::string path;
    std::string output;
    std::string weights_sha256;
  };
  void evaluate_encoder(const std::string& encoder, const Source& train, const Source* test,
                        std::vector<EncoderEvaluation>& done, std::vector<std::string>& class_names);

  StageContext context_;
  std::string train_dataset_, test_dataset_;
  double test_fraction_;
  std::uint64_t seed_;
  std::map<std::string, Source> train_, test_;  // by encoder
  std::string current_encoder_;
  std::size_t encoder_index_ = 0, encoders_ = 0;
  std::vector<StageResult> results_;  // once written
};

// The input port and the parameters both stages take (datasets, split, seed, threads).
PortSpec feature_file_input();
PortSpec evaluation_output();
std::vector<ParamSpec> common_params();

}  // namespace histoflow::patch_eval
