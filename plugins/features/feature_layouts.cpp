#include "histoflow/features/feature_layouts.hpp"

#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "histoflow/atomic_file.hpp"
#include "histoflow/cache_folder.hpp"
#include "histoflow/input_limits.hpp"
#include "histoflow/torch_encoders/torch_checkpoint.hpp"

namespace histoflow::features {
namespace {

namespace fs = std::filesystem;

std::optional<fs::path> existing(const fs::path& file) {
  std::error_code ec;
  return fs::is_regular_file(file, ec) ? std::optional<fs::path>(file) : std::nullopt;
}

// The slide id in the slide store's name, <slide>-<first 12 hex digits of the fingerprint>.h5; empty otherwise.
std::string histoflow_slide_id(const std::string& name) {
  constexpr std::size_t kTail = 1 + 12 + 3;
  if (name.size() <= kTail || name[name.size() - kTail] != '-' || name.compare(name.size() - 3, 3, ".h5") != 0) return "";
  for (std::size_t i = name.size() - kTail + 1; i < name.size() - 3; ++i)
    if (!std::isxdigit(static_cast<unsigned char>(name[i]))) return "";
  return name.substr(0, name.size() - kTail);
}

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + file.string() + "'");
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float value;
  if (exponent == 0) value = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31) value = mantissa ? NAN : INFINITY;
  else value = std::ldexp(static_cast<float>(mantissa | 0x400), static_cast<int>(exponent) - 25);
  return sign ? -value : value;
}

float bfloat16_to_float(std::uint16_t h) {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

// Copies the elements of a strided [rows, cols] view of `base` (elements of type Stored) into `out`, row-major.
template <typename Stored, typename Convert>
void copy_matrix(const char* base, std::int64_t offset, std::int64_t rows, std::int64_t cols, std::int64_t row_stride,
                 std::int64_t col_stride, float* out, Convert convert) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      Stored value;
      std::memcpy(&value, base + (offset + r * row_stride + c * col_stride) * static_cast<std::int64_t>(sizeof(Stored)), sizeof(Stored));
      *out++ = convert(value);
    }
}

// A saved [N, D] tensor (any strides; float32, float16, bfloat16 or float64) as a row-major matrix.
FeatureMatrix matrix_of(const torch_encoders::CheckpointTensor& t, const fs::path& file) {
  std::vector<std::int64_t> shape = t.shape, strides = t.strides;
  if (shape.size() == 3 && shape[0] == 1) shape.erase(shape.begin()), strides.erase(strides.begin());  // [1, N, D] bags
  if (shape.size() != 2)
    throw std::runtime_error("'" + file.string() + "': the tensor should be [N, D] features, it has " + std::to_string(t.shape.size()) + " dimensions");
  FeatureMatrix m;
  m.rows = shape[0];
  m.dim = shape[1];
  m.values.resize(static_cast<std::size_t>(m.rows * m.dim));
  const auto copy = [&](auto stored, auto convert) {
    copy_matrix<decltype(stored)>(t.storage->data(), t.offset, m.rows, m.dim, strides[0], strides[1], m.values.data(), convert);
  };
  if (t.dtype == "F32") copy(float{}, [](float v) { return v; });
  else if (t.dtype == "F64") copy(double{}, [](double v) { return static_cast<float>(v); });
  else if (t.dtype == "F16") copy(std::uint16_t{}, half_to_float);
  else if (t.dtype == "BF16") copy(std::uint16_t{}, bfloat16_to_float);
  else throw std::runtime_error("'" + file.string() + "': features of dtype " + t.dtype + " (floating point expected)");
  return m;
}

FeatureMatrix read_pt_features(const fs::path& file) {
  return matrix_of(torch_encoders::read_torch_tensor(read_bytes(file), file.string()), file);
}

// A saved [N] integer tensor (int64, int32, int16, int8, uint8).
std::vector<std::int64_t> integers_of(const torch_encoders::CheckpointTensor& t, const fs::path& file) {
  if (t.shape.size() != 1) throw std::runtime_error("'" + file.string() + "': labels should be [N], they have " + std::to_string(t.shape.size()) + " dimensions");
  const std::size_t size = t.dtype == "I64" ? 8 : t.dtype == "I32" ? 4 : t.dtype == "I16" ? 2 : t.dtype == "I8" || t.dtype == "U8" ? 1 : 0;
  if (size == 0) throw std::runtime_error("'" + file.string() + "': labels of dtype " + t.dtype + " (integers expected)");
  std::vector<std::int64_t> out(static_cast<std::size_t>(t.shape[0]));
  for (std::int64_t i = 0; i < t.shape[0]; ++i) {
    const char* at = t.storage->data() + (t.offset + i * t.strides[0]) * static_cast<std::int64_t>(size);
    std::int64_t v = 0;
    if (size == 8) std::memcpy(&v, at, 8);
    else if (size == 4) { std::int32_t x; std::memcpy(&x, at, 4); v = x; }
    else if (size == 2) { std::int16_t x; std::memcpy(&x, at, 2); v = x; }
    else v = t.dtype == "U8" ? static_cast<unsigned char>(*at) : static_cast<signed char>(*at);
    out[static_cast<std::size_t>(i)] = v;
  }
  return out;
}

// {features | embeddings | feats: [N, D], labels | targets: [N]}, as evaluation scripts torch.save them.
PatchFeatures read_pt_patches(const fs::path& file) {
  const auto checkpoint = torch_encoders::read_torch_checkpoint(read_bytes(file), file.string());
  const auto find = [&](std::initializer_list<const char*> names, const char* what) {
    for (const char* name : names)
      if (auto it = checkpoint.tensors.find(name); it != checkpoint.tensors.end()) return it->second;
    std::string keys;
    for (const auto& [key, unused] : checkpoint.tensors) keys += (keys.empty() ? "" : ", ") + key;
    throw std::runtime_error("'" + file.string() + "' has no " + what + " tensor (keys: " + keys + ")");
  };
  PatchFeatures out;
  out.features = matrix_of(find({"features", "embeddings", "feats"}, "features/embeddings"), file);
  out.labels = integers_of(find({"labels", "targets"}, "labels/targets"), file);
  if (static_cast<std::int64_t>(out.labels.size()) != out.features.rows)
    throw std::runtime_error("'" + file.string() + "' has " + std::to_string(out.features.rows) + " feature rows and " +
                             std::to_string(out.labels.size()) + " labels");
  return out;
}

template <typename T>
std::optional<T> attribute(const AttributeMap& attributes, const std::string& key) {
  const auto it = attributes.find(key);
  if (it == attributes.end()) return std::nullopt;
  if (const T* value = std::get_if<T>(&it->second)) return *value;
  if constexpr (std::is_same_v<T, double>)
    if (const auto* integer = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*integer);
  return std::nullopt;
}

// The tiling geometry the store recorded, in the terms CLAM and TRIDENT use.
struct Geometry {
  std::int64_t level = 0;          // pyramid level read
  std::int64_t read_size = 0;      // pixels read at that level per tile side (CLAM's patch_size)
  std::int64_t target_size = 0;    // the encoder's input side
  std::int64_t extent_level0 = 0;  // a tile's side in level-0 pixels
  std::int64_t overlap = 0;        // target pixels shared by neighbouring tiles
  double level0_magnification = 0, target_magnification = 0;
  std::int64_t width = 0, height = 0;  // level 0
};

// TRIDENT's convention from microns per pixel to an objective magnification (its _fetch_magnification).
double magnification_of_mpp(double mpp) {
  if (mpp < 0.16) return 80;
  if (mpp < 0.2) return 60;
  if (mpp < 0.3) return 40;
  if (mpp < 0.6) return 20;
  if (mpp < 1.2) return 10;
  if (mpp < 2.4) return 5;
  throw std::runtime_error("slide mpp " + std::to_string(mpp) + " is coarser than any magnification TRIDENT knows (5x: below 2.4)");
}

Geometry geometry_of(const SlideFeatures& content, const std::string& slide_id) {
  const AttributeMap& a = content.attributes;
  const auto need = [&](auto value, const char* key) {
    if (!value) throw std::runtime_error("slide '" + slide_id + "': the feature file has no '" + key + "' attribute (not written by slide_store?)");
    return *value;
  };
  Geometry g;
  g.level = need(attribute<std::int64_t>(a, "level"), "level");
  g.target_size = need(attribute<std::int64_t>(a, "tile_size"), "tile_size");
  g.extent_level0 = std::llround(need(attribute<double>(a, "extent_level0"), "extent_level0"));
  g.read_size = need(attribute<std::int64_t>(a, "read_size"), "read_size");
  const auto stride = attribute<std::int64_t>(a, "stride").value_or(g.target_size);
  g.overlap = std::max<std::int64_t>(0, g.target_size - stride);
  // "4096x3072 @1.000000; ...": level 0 comes first.
  if (const auto levels = attribute<std::string>(a, "levels")) std::sscanf(levels->c_str(), "%" SCNd64 "x%" SCNd64, &g.width, &g.height);
  return g;
}

// TRIDENT's magnifications: the slide's objective power (else TRIDENT's mpp convention), and the tiles'.
void add_magnifications(Geometry& g, const AttributeMap& a, const std::string& slide_id) {
  const auto slide_mpp = attribute<double>(a, "slide_mpp"), mpp = attribute<double>(a, "mpp");
  if (!slide_mpp || !mpp) throw std::runtime_error("slide '" + slide_id + "': the feature file has no slide_mpp or mpp attribute");
  const auto objective = attribute<double>(a, "objective_power");
  g.level0_magnification = objective ? *objective : magnification_of_mpp(*slide_mpp);
  g.target_magnification = g.level0_magnification * *slide_mpp / *mpp;
  if (std::abs(g.target_magnification - std::round(g.target_magnification)) < 0.01 * g.target_magnification)
    g.target_magnification = std::round(g.target_magnification);
}

std::string magnification_text(double m) {
  return std::abs(m - std::round(m)) < 1e-9 ? std::to_string(std::llround(m)) : std::to_string(m);
}

Attribute magnification_attribute(double m) {
  return std::abs(m - std::round(m)) < 1e-9 ? Attribute(static_cast<std::int64_t>(std::llround(m))) : Attribute(m);
}

}  // namespace

FeatureLayout parse_feature_layout(const std::string& name) {
  if (name == "histoflow") return FeatureLayout::Histoflow;
  if (name == "clam") return FeatureLayout::Clam;
  if (name == "trident") return FeatureLayout::Trident;
  throw std::invalid_argument("unknown feature layout '" + name + "' (histoflow, clam or trident)");
}

std::string layout_name(FeatureLayout layout) {
  switch (layout) {
    case FeatureLayout::Histoflow: return "histoflow";
    case FeatureLayout::Clam: return "clam";
    case FeatureLayout::Trident: return "trident";
  }
  return "?";
}

FeatureFolder::FeatureFolder(FeatureLayout layout, fs::path root) : layout_(layout), root_(std::move(root)) {
  if (root_.filename().empty()) root_ = root_.parent_path();  // "features_uni/": its parent is TRIDENT's job folder
  if (layout_ != FeatureLayout::Histoflow) return;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    const std::string name = histoflow_slide_id(entry.path().filename().string());
    if (!name.empty()) histoflow_files_[name].push_back(entry.path());
  }
  if (ec) throw std::runtime_error("cannot list '" + root_.string() + "': " + ec.message());
}

std::optional<FeatureFileRef> FeatureFolder::find(const std::string& slide_id) const {
  switch (layout_) {
    case FeatureLayout::Histoflow: {
      const auto it = histoflow_files_.find(cache_file_name(slide_id, "", ""));  // the store's spelling of the id
      if (it == histoflow_files_.end()) return std::nullopt;
      if (it->second.size() > 1)
        throw std::runtime_error("slide '" + slide_id + "' has " + std::to_string(it->second.size()) + " feature files in '" +
                                 root_.string() + "' (" + it->second[0].filename().string() + ", " +
                                 it->second[1].filename().string() + "): different slide files under one id");
      return FeatureFileRef{it->second[0], "histoflow", {}};
    }
    case FeatureLayout::Clam: {
      const auto h5 = existing(root_ / "h5_files" / (slide_id + ".h5"));
      if (h5) return FeatureFileRef{*h5, "h5", {}};
      const auto pt = existing(root_ / "pt_files" / (slide_id + ".pt"));
      if (!pt) return std::nullopt;
      return FeatureFileRef{*pt, "pt", existing(root_ / "patches" / (slide_id + ".h5")).value_or(fs::path())};
    }
    case FeatureLayout::Trident: {
      if (const auto h5 = existing(root_ / (slide_id + ".h5"))) return FeatureFileRef{*h5, "h5", {}};
      const auto pt = existing(root_ / (slide_id + ".pt"));
      if (!pt) return std::nullopt;
      // TRIDENT's patches sit beside the features_<encoder> folder.
      return FeatureFileRef{*pt, "pt", existing(root_.parent_path() / "patches" / (slide_id + "_patches.h5")).value_or(fs::path())};
    }
  }
  return std::nullopt;
}

std::string FeatureFolder::where_it_looks(const std::string& id) const {
  switch (layout_) {
    case FeatureLayout::Histoflow: return (root_ / (id + "-<fingerprint>.h5")).string();
    case FeatureLayout::Clam: return (root_ / "h5_files" / (id + ".h5")).string() + " or " + (root_ / "pt_files" / (id + ".pt")).string();
    case FeatureLayout::Trident: return (root_ / (id + ".h5")).string() + " or " + (root_ / (id + ".pt")).string();
  }
  return root_.string();
}

SlideFeatures read_slide_features(const FeatureFileRef& ref) {
  if (ref.format == "histoflow") return read_slide_features(ref.file, /*verify=*/true);
  if (ref.format == "h5") return read_slide_features(ref.file, /*verify=*/false, /*require_coords=*/false);
  if (ref.format != "pt") throw std::invalid_argument("unknown feature file format '" + ref.format + "' (histoflow, h5 or pt)");
  SlideFeatures out;
  out.features = read_pt_features(ref.file);
  if (!ref.coords_file.empty()) {
    SlideFeatures coords = read_coordinates(ref.coords_file);
    if (static_cast<std::int64_t>(coords.coords.size()) != 2 * out.features.rows)
      throw std::runtime_error("'" + ref.file.string() + "' has " + std::to_string(out.features.rows) + " rows, its coordinates '" +
                               ref.coords_file.string() + "' " + std::to_string(coords.coords.size() / 2));
    out.coords = std::move(coords.coords);
    out.coords_attributes = std::move(coords.coords_attributes);
  }
  return out;
}

FeatureFileShape read_feature_shape(const FeatureFileRef& ref) {
  if (ref.format == "histoflow" || ref.format == "h5") return read_feature_shape(ref.file);
  const SlideFeatures content = read_slide_features(ref);  // "pt"; other formats are refused there
  FeatureFileShape shape;
  shape.rows = content.features.rows;
  shape.dim = content.features.dim;
  shape.has_coords = !content.coords.empty();
  return shape;
}

PatchFeatures read_patch_features(const FeatureFileRef& ref, const std::vector<std::string>& class_names) {
  PatchFeatures out;
  if (ref.format == "histoflow") return read_patch_features(ref.file, /*verify=*/true);
  if (ref.format == "h5") out = read_patch_features(ref.file, /*verify=*/false, /*complete=*/false);
  else if (ref.format == "pt") out = read_pt_patches(ref.file);
  else throw std::invalid_argument("unknown feature file format '" + ref.format + "' (histoflow, h5 or pt)");
  name_patch_classes(out, ref.file, class_names);
  return out;
}

void name_patch_classes(PatchFeatures& out, const fs::path& file, const std::vector<std::string>& class_names) {
  std::int64_t classes = 0;
  for (auto label : out.labels) {
    if (label < 0) throw std::runtime_error("'" + file.string() + "': label " + std::to_string(label) + " is negative");
    // Unnamed classes are named by number, 0 to the largest label: a label of 2^62 must not mean 2^62 names.
    check_input_limit(InputLimit::LabelClasses, static_cast<std::uint64_t>(label) + 1, "'" + file.string() + "'");
    classes = std::max(classes, label + 1);
  }
  if (!out.class_names.empty() && !class_names.empty() && out.class_names != class_names)
    throw std::runtime_error("'" + file.string() + "' names its classes itself, otherwise than the class_names given: "
                             "leave class_names out, or give the file's order");
  if (out.class_names.empty() && !class_names.empty()) {
    if (classes > static_cast<std::int64_t>(class_names.size()))
      throw std::runtime_error("'" + file.string() + "': label " + std::to_string(classes - 1) + " has no name among the " +
                               std::to_string(class_names.size()) + " class_names given");
    out.class_names = class_names;
  } else if (out.class_names.empty()) {
    for (std::int64_t c = 0; c < classes; ++c) out.class_names.push_back(std::to_string(c));
  }
  for (auto label : out.labels)
    if (label >= static_cast<std::int64_t>(out.class_names.size()))
      throw std::runtime_error("'" + file.string() + "': label " + std::to_string(label) + " outside its class_names");
  if (out.paths.empty())
    for (std::int64_t i = 0; i < out.features.rows; ++i) out.paths.push_back(file.filename().string() + "#" + std::to_string(i));
}

std::vector<fs::path> export_slide_features(FeatureLayout layout, const fs::path& root, const std::string& slide_id,
                                            SlideFeatures content) {
  Geometry g = geometry_of(content, slide_id);
  const auto encoder = attribute<std::string>(content.attributes, "encoder").value_or("features");
  std::vector<fs::path> written;
  // The store's content rewritten: its features and coordinates as they are, the attributes each tool's.
  if (layout == FeatureLayout::Clam) {
    // CLAM reads patch_size pixels at patch_level (dataset_h5.Whole_Slide_Bag_FP).
    AttributeMap coords{{"patch_size", g.read_size}, {"patch_level", g.level}, {"name", slide_id},
                        {"save_path", (root / "patches").string()}};
    content.coords_attributes = coords;
    AttributeMap identity;  // for readers other than CLAM
    for (const char* key : {"encoder", "weights_sha256", "output", "precision", "slide_id"})
      if (auto it = content.attributes.find(key); it != content.attributes.end()) identity[key] = it->second;
    content.attributes = std::move(identity);
    written.push_back(root / "h5_files" / (slide_id + ".h5"));
    write_slide_features(written.back(), content, StorageType::Float32);
    written.push_back(root / "pt_files" / (slide_id + ".pt"));
    write_file_atomically(written.back(), torch_encoders::write_torch_tensor({content.features.rows, content.features.dim},
                                                                             content.features.values.data(), "archive"));
    written.push_back(root / "patches" / (slide_id + ".h5"));
    write_coordinates(written.back(), content.coords, coords);
    return written;
  }
  if (layout == FeatureLayout::Trident) {
    add_magnifications(g, content.attributes, slide_id);
    // TRIDENT's job folder: <magnification>x_<size>px_<overlap>px_overlap/{patches,features_<encoder>}.
    const fs::path job = root / (magnification_text(g.target_magnification) + "x_" + std::to_string(g.target_size) + "px_" +
                                 std::to_string(g.overlap) + "px_overlap");
    AttributeMap coords{{"patch_size", g.target_size}, {"patch_size_level0", g.extent_level0},
                        {"level0_magnification", magnification_attribute(g.level0_magnification)},
                        {"target_magnification", magnification_attribute(g.target_magnification)},
                        {"overlap", g.overlap}, {"name", slide_id}, {"savetodir", (job / "patches").string()}};
    if (g.width > 0 && g.height > 0) coords["level0_width"] = g.width, coords["level0_height"] = g.height;
    const fs::path features_folder = job / ("features_" + encoder);
    content.attributes.clear();  // TRIDENT's files carry theirs on the datasets
    content.coords_attributes = coords;
    content.features_attributes = {{"name", slide_id}, {"savetodir", features_folder.string()}, {"encoder", encoder}};
    written.push_back(features_folder / (slide_id + ".h5"));
    write_slide_features(written.back(), content, StorageType::Float32);
    written.push_back(job / "patches" / (slide_id + "_patches.h5"));
    write_coordinates(written.back(), content.coords, coords);
    return written;
  }
  throw std::invalid_argument("export writes the clam or trident layout; the histoflow layout is the store's own");
}

}  // namespace histoflow::features
