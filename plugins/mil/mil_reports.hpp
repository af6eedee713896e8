#pragma once
// Everything a mil_cv stage writes into <output>/<stage id>/: predictions.csv, attention.csv (attention
// aggregators), metrics.json, summary.md, roc.csv (every ROC curve's points) and roc.png (drawn from them),
// models/fold_<k>.safetensors, reproduce.json (the stage's resolved parameters, versions, the encoder's weight
// hash, each fold model's hash) and resolved_graph.toml (a copy of the run's, when there is one). summary.md
// ends with the list of the files written, each one written by this call (or heatmaps/, by write_heatmaps
// before it).
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cross_validation.hpp"
#include "mil_inputs.hpp"

namespace histoflow::mil {

struct MilRun {
  std::string stage_id, method, encoder, weights_sha256, feature_output, label_column, bag_mode, external_cohort;
  std::vector<std::string> class_names;
  const std::vector<Bag>* bags = nullptr;
  const std::vector<Bag>* external = nullptr;
  const CrossValidationResult* result = nullptr;
  std::vector<SkippedSlide> skipped;
  nlohmann::json parameters;            // the stage's resolved parameters
  std::filesystem::path resolved_graph; // the run's resolved_graph.toml, copied when present
  bool has_attention = false;
  bool heatmaps_written = false;        // heatmaps/ (listed in summary.md)
  std::map<std::string, std::string> slide_paths;  // slide id -> whole-slide image (heatmaps)
};

// Writes the files; returns the summary's Markdown (also in summary.md).
std::string write_mil_reports(const std::filesystem::path& directory, const MilRun& run);

}  // namespace histoflow::mil
