#pragma once
// What the patch-level stages write and emit for one encoder: predictions CSV, metrics JSON, a confusion
// matrix per method (CSV and PNG), a Markdown summary of the stage, and one "evaluation" packet per method
// for the comparison table. All files are written atomically.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "histoflow/evaluation_common/classification_metrics.hpp"
#include "histoflow/packet.hpp"
#include "patch_dataset.hpp"

namespace histoflow::patch_eval {

struct MethodOutcome {
  std::string method;                     // the comparison table's column: "20-NN", "20-NN (T=0.07)", "linear"
  std::vector<std::int64_t> predictions;  // one per test row
  nlohmann::json details;                 // k, voting, lambda, sweep, ...
  evaluation_common::ClassificationMetrics metrics;    // filled by write_encoder_report
  evaluation_common::ConfusionMatrix confusion;        // filled by write_encoder_report
};

struct EncoderEvaluation {
  std::string stage_id;
  std::string encoder;
  std::string output;
  std::string weights_sha256;
  std::string train_file;
  std::string test_file;    // empty when the test set is a split of the training file
  std::string split;        // how train and test were obtained, in words
  std::int64_t train_rows = 0;
  std::filesystem::path folder;  // where this encoder's files go
  std::vector<MethodOutcome> methods;
};

// A file-name-safe form of a method or encoder name: "20-NN (T=0.07)" -> "20-NN_T0.07".
std::string file_slug(const std::string& name);

// Scores every method against `test`'s labels, then writes the encoder's files into evaluation.folder.
void write_encoder_report(EncoderEvaluation& evaluation, const PatchFeatures& test);

// The stage's Markdown summary (one table row per encoder and method, then per-class recall).
std::string summary_markdown(const std::string& stage_id, const std::vector<EncoderEvaluation>& evaluations,
                             const std::vector<std::string>& class_names);

// The packet the comparison table reads: encoder, method, setting "test", mean:<metric>, output_dir.
PacketPtr method_evaluation(const EncoderEvaluation& evaluation, const MethodOutcome& method);

}  // namespace histoflow::patch_eval
