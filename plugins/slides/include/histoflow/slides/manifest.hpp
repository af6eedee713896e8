#pragma once
// Cohort manifests: one row per slide with its patient, labels, and optionally cohort and mpp.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "histoflow/packet.hpp"

namespace histoflow::slides {

struct ManifestOptions {
  std::string slide_column = "slide";      // path of the slide file, relative to the manifest's folder
  std::string id_column;                   // empty: the slide id is the file name without extension
  std::string patient_column = "patient";  // empty: each slide is its own patient
  std::vector<std::string> label_columns{"label"};
  std::string cohort_column;               // optional
  std::string mpp_column;                  // optional: overrides the slide's own mpp
  char delimiter = ',';
  bool skip_missing = false;               // on_missing = "skip"
  // false: slide files need not exist (a cohort known by its feature files), and with an id_column the slide
  // column may be absent.
  bool require_slide_files = true;
};

struct SlideEntry {
  std::string id;
  std::filesystem::path path;  // absolute; empty when the manifest has no slide column (require_slide_files false)
  std::string patient;
  std::map<std::string, std::string> labels;
  std::string cohort;
  std::optional<double> mpp;
  int line = 0;
};

struct Manifest {
  std::filesystem::path file;
  std::vector<SlideEntry> slides;
  std::vector<std::string> skipped;  // "manifest.csv:7: slide 'x': file not found: /abs/x.svs"
};

// What a slide's packets carry from its manifest row: slide_id, path (when the manifest names a file), patient,
// cohort (when given) and label:<column> for each label column. Stages add what they know beyond it.
std::map<std::string, Attribute> slide_attributes(const SlideEntry& slide);

// Reads and checks the whole manifest; throws std::runtime_error listing every problem found, one per
// line, each as "file:line: message" (missing files listed together, duplicate ids naming both lines).
Manifest load_manifest(const std::filesystem::path& file, const ManifestOptions& options);

}  // namespace histoflow::slides
