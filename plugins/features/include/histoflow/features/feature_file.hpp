#pragma once
// Feature files: HDF5, one per slide (CLAM/TRIDENT layout) or one per patch dataset.
//
// Slide file:   /features float32|float16 [N, D], /coords int64 [N, 2] (level-0 x, y of each tile's corner).
// Patch file:   /features [N, D], /labels int64 [N], /paths variable-length UTF-8 strings [N],
//               root attribute class_names (string array, index = label).
// Root attributes (strings, integers, floats) describe the content: encoder, weights_sha256, output,
// tile_size, mpp, level, downsample, slide_path, slide_id, tiling parameters, histoflow_version, ...
//
// Integrity: every file is sealed (histoflow/sealed_file.hpp): its first 4 KiB are an HDF5 user block (HDF5
// and h5py skip it) with the SHA-256 of the rest and a JSON identity line. A file is written under a temporary
// name in its final folder, flushed, checksummed and renamed: a file with its final name is complete.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "histoflow/packet.hpp"

namespace histoflow::features {

enum class StorageType { Float32, Float16 };

using AttributeMap = std::map<std::string, Attribute>;  // int64, double, bool (stored as int8), string

struct FeatureMatrix {
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::vector<float> values;  // rows * dim, row-major (float16 files are widened on reading)
  const float* row(std::int64_t i) const { return values.data() + i * dim; }
};

struct SlideFeatures {
  FeatureMatrix features;
  std::vector<std::int64_t> coords;  // rows * 2: x0, y0, x1, y1, ...
  AttributeMap attributes;
  AttributeMap coords_attributes;    // CLAM/TRIDENT read patch_size, patch_level, ... from the coords dataset
  AttributeMap features_attributes;  // TRIDENT names the encoder on the features dataset
};

struct PatchFeatures {
  FeatureMatrix features;
  std::vector<std::int64_t> labels;     // rows; index into class_names
  std::vector<std::string> paths;       // rows
  std::vector<std::string> class_names;
  AttributeMap attributes;
};

// Write atomically (temp file in the same folder, fsync, rename). `identity` is the JSON line stored in the
// user block (e.g. {"key": ..., "slide_id": ...}); it must not contain a newline.
void write_slide_features(const std::filesystem::path& file, const SlideFeatures& content, StorageType storage,
                          const std::string& identity = "{}");
void write_patch_features(const std::filesystem::path& file, const PatchFeatures& content, StorageType storage,
                          const std::string& identity = "{}");

// Read (verifying the checksum first unless told not to); errors name the file and what is wrong.
// Every reader runs libhdf5 in a short-lived reader process (histoflow-read-features, found beside the code that
// calls it or in ../bin; HISTOFLOW_FEATURE_READER names it elsewhere): a file that crashes libhdf5 fails alone,
// with an error naming it, and the caller goes on. Writing stays in this process.
// require_coords false: a file without /coords reads with no coordinates (features from other tools).
SlideFeatures read_slide_features(const std::filesystem::path& file, bool verify = true, bool require_coords = true);

// A coordinates-only file (CLAM's and TRIDENT's patch files): /coords [N, 2] with its attributes, sealed.
void write_coordinates(const std::filesystem::path& file, const std::vector<std::int64_t>& coords, const AttributeMap& attributes);
SlideFeatures read_coordinates(const std::filesystem::path& file);  // coords and coords_attributes only; not verified
// complete false: /paths and the class_names attribute may be missing (patch features from other tools).
PatchFeatures read_patch_features(const std::filesystem::path& file, bool verify = true, bool complete = true);

// What a slide file holds, from its metadata only (no dataset is read, nothing verified): a cohort's files
// checked before their features are needed.
struct FeatureFileShape {
  std::int64_t rows = 0, dim = 0;
  bool has_coords = false;  // a /coords [rows, 2] dataset
  AttributeMap attributes, features_attributes;
};
FeatureFileShape read_feature_shape(const std::filesystem::path& file);

// Only the root attributes (no dataset is read: the reader process's start, ~22 ms, is most of its cost).
AttributeMap read_feature_attributes(const std::filesystem::path& file);

}  // namespace histoflow::features
