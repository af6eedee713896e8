#pragma once
// Per-slide feature files in the layouts the field's tools write, found, read and written by histoflow:
//
//   histoflow  the slide store's files: <folder>/<slide>-<fingerprint[:12]>.h5, sealed (checksum verified)
//   clam       CLAM's extract_features_fp.py: <root>/h5_files/<slide>.h5 (features [N, D], coords [N, 2]) and
//              <root>/pt_files/<slide>.pt (torch.save of the features [N, D], no coords); CLAM's patching
//              writes coords attributes patch_size (pixels read at patch_level) and patch_level
//   trident    TRIDENT: <root>/<slide>.h5, root being a features_<encoder> folder, with features [N, D] and
//              coords [N, 2] whose attributes say patch_size (at target_magnification), patch_size_level0,
//              level0_magnification, target_magnification; or <slide>.pt (torch.save of the features)
//
// Coordinates are level-0 pixels of each tile's top-left corner in every layout.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "histoflow/features/feature_file.hpp"

namespace histoflow::features {

enum class FeatureLayout { Histoflow, Clam, Trident };

FeatureLayout parse_feature_layout(const std::string& name);  // "histoflow", "clam", "trident"; throws otherwise
std::string layout_name(FeatureLayout layout);

// How one file is read: "histoflow" (sealed HDF5, verified), "h5" (any HDF5 with /features and /coords),
// "pt" (a torch.save'd tensor [N, D]; coordinates from a companion HDF5 file when there is one).
struct FeatureFileRef {
  std::filesystem::path file;
  std::string format;
  std::filesystem::path coords_file;  // "pt": the HDF5 whose /coords belong to these rows; empty: none
};

// A folder of per-slide feature files in one layout. find() says where a slide's features are; nullopt when
// there is no file. CLAM: h5_files first (it has coordinates), else pt_files (with patches/' coordinates when
// present). A histoflow folder is listed once, here (a cohort has thousands of files); find() throws when the
// slide id has more than one file (two fingerprints: two different slides under one id).
class FeatureFolder {
 public:
  FeatureFolder(FeatureLayout layout, std::filesystem::path root);
  std::optional<FeatureFileRef> find(const std::string& slide_id) const;
  std::string where_it_looks(const std::string& slide_id) const;  // for messages

 private:
  FeatureLayout layout_;
  std::filesystem::path root_;
  std::map<std::string, std::vector<std::filesystem::path>> histoflow_files_;  // slide id -> its files
};

// Reads any of the formats; errors name the file. A "pt" file without coords_file gives no coordinates.
SlideFeatures read_slide_features(const FeatureFileRef& ref);

// Rows, width, coordinates and attributes of any of the formats, without reading HDF5 datasets (a .pt file is
// read whole: its tensor's shape is in the pickle); nothing verified. Errors name the file.
FeatureFileShape read_feature_shape(const FeatureFileRef& ref);

// A labelled patch dataset: "histoflow" (patch_store's file, verified), "h5" (/features [N, D], /labels [N];
// /paths and the class_names attribute when present) or "pt" (a torch.save'd dict {features | embeddings | feats:
// [N, D], labels | targets: [N]}). Class names, when the file has none: `class_names` (index = label), else the
// label numbers ("0", "1", ...). Paths, when it has none: "<file name>#<row>".
PatchFeatures read_patch_features(const FeatureFileRef& ref, const std::vector<std::string>& class_names = {});
// Its last step, on what another tool's file held: labels checked, class names and paths filled in as above.
void name_patch_classes(PatchFeatures& content, const std::filesystem::path& file, const std::vector<std::string>& class_names);

// Writes one slide's features in a foreign layout under `root`, each file atomically (temporary name, rename):
//   clam:    h5_files/<slide>.h5 and pt_files/<slide>.pt, and patches/<slide>.h5 (coords with CLAM's attributes)
//   trident: features_<encoder>/<slide>.h5 (TRIDENT's coords and features attributes), patches/<slide>_patches.h5
// `content` is the store's file as read (attributes included: tiling geometry, encoder). Returns the files written.
std::vector<std::filesystem::path> export_slide_features(FeatureLayout layout, const std::filesystem::path& root,
                                                         const std::string& slide_id, SlideFeatures content);

}  // namespace histoflow::features
