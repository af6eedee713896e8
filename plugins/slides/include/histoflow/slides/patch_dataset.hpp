#pragma once
// A labelled patch dataset on disk: one sub-folder per class (the NCT-CRC-HE-100K / CRC-VAL-HE-7K layout) or a
// CSV of path and label. patch_folder streams one; the finetuning stage's evaluation reads others the same way.
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace histoflow::slides {

struct PatchDatasetSource {
  std::filesystem::path root;  // class folders, or
  std::filesystem::path csv;   // a CSV (exactly one of the two)
  std::string path_column = "path";
  std::string label_column = "label";
  std::set<std::string> extensions{".png", ".jpg", ".jpeg", ".tif", ".tiff"};  // read from class folders, any case
  std::vector<std::string> classes;  // index order; empty: the sorted names found
};

struct PatchDataset {
  std::vector<std::filesystem::path> files;  // sorted, whatever order the file system lists
  std::vector<std::int64_t> labels;          // per file, index into classes
  std::vector<std::string> classes;
  std::filesystem::path base;                // what item ids are relative to (the root, or the CSV's folder)
};

// Throws std::runtime_error naming the folder or CSV (line) when it is missing, malformed, holds no image, or a
// class found is not in `classes`.
PatchDataset list_patch_dataset(const PatchDatasetSource& source);

}  // namespace histoflow::slides
