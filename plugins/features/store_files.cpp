#include "store_files.hpp"

#include "histoflow/errors.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/version.hpp"

namespace histoflow::features {
namespace {
constexpr const char* kIdentityKeys[] = {"encoder", "weights_sha256", "output", "precision", "position_grid"};

std::string describe_encoder(const AttributeMap& attributes) {
  std::string text;
  for (const char* key : kIdentityKeys) {
    const auto it = attributes.find(key);
    if (it == attributes.end()) continue;
    if (const auto* value = std::get_if<std::string>(&it->second))
      text += (text.empty() ? "" : ", ") + std::string(key) + " " +
              (std::string(key) == "weights_sha256" ? value->substr(0, 12) : *value);
    else if (const auto* number = std::get_if<std::int64_t>(&it->second))
      text += (text.empty() ? "" : ", ") + std::string(key) + " " + std::to_string(*number);
  }
  return text.empty() ? "(no encoder attributes)" : text;
}
}  // namespace

StoreFolder::StoreFolder(const StageContext& context) {
  const Params& p = context.params;
  root = p.has("root") && !p.get_string("root").empty() ? std::filesystem::path(p.get_string("root"))
                                                       : context.experiment.output_dir / "features";
  storage = p.get_string("dtype") == "float16" ? StorageType::Float16 : StorageType::Float32;
  verify_existing = p.get_bool("verify_existing");
}

void StoreFolder::set_lineage(const std::string& value) {
  lineage = value;
  folder = root / value.substr(0, 16);
}

void EncoderIdentity::check(const Packet& batch, std::int64_t dim) {
  AttributeMap identity;
  for (const char* key : kIdentityKeys)
    if (auto it = batch.attributes.find(key); it != batch.attributes.end()) identity[key] = it->second;
  if (dim_ < 0) {
    dim_ = dim;
    attributes_ = std::move(identity);
    return;
  }
  if (identity != attributes_ || dim != dim_)
    throw FatalError("two encoders feed one store: " + describe_encoder(attributes_) + " (" + std::to_string(dim_) +
                     " features) and " + describe_encoder(identity) + " (" + std::to_string(dim) +
                     " features); give each encoder its own store");
}

std::vector<ParamSpec> store_params() {
  // Unset by default: a path default would resolve to the graph's folder.
  return {not_affecting_output(param_path("root", "Folder of the feature files; unset: <experiment output>/features")),
          param_string("dtype", "float32", "Stored precision of /features", {"float32", "float16"}),
          not_affecting_output(param_bool("verify_existing", true, "Check the checksum of an existing file before restoring it"))};
}

std::int64_t feature_width(const Packet& batch) {
  const Tensor& t = batch.tensor;
  if (t.dtype() != DType::Float32 || t.shape().size() != 2 || t.shape()[0] != static_cast<std::int64_t>(batch.rows.size()))
    throw std::invalid_argument("expects float32 [rows, D] features with one provenance per row, got " + t.describe());
  return t.shape()[1];
}

void add_file_attributes(AttributeMap& attributes, std::int64_t rows, std::int64_t dim, const StoreFolder& store) {
  attributes["rows"] = rows;
  attributes["dim"] = dim;
  attributes["lineage"] = store.lineage;
  attributes["histoflow_version"] = std::string(kVersion);
  attributes["dtype"] = std::string(store.storage == StorageType::Float16 ? "float16" : "float32");
}

bool is_manifest_attribute(const std::string& key) {
  return key.rfind("label:", 0) == 0 || key == "patient" || key == "cohort" || key == "path" || key == "slide_id";
}

Packet feature_file_packet(const Provenance& provenance, const AttributeMap& item, const AttributeMap& stored,
                           const std::filesystem::path& file, const std::string& content) {
  Packet packet;
  packet.kind = kFeatureFileKind;
  packet.provenance = provenance;
  packet.provenance.tile.reset();
  for (const auto& [key, value] : item)
    if (is_manifest_attribute(key)) packet.attributes[key] = value;  // labels come from this run's manifest
  if (auto it = item.find("path"); it != item.end()) packet.attributes["slide_path"] = it->second;
  for (const char* key : {"encoder", "weights_sha256", "output", "precision", "rows", "dim", "dataset"})
    if (auto it = stored.find(key); it != stored.end()) packet.attributes[key] = it->second;
  packet.attributes["content"] = content;
  packet.attributes["path"] = std::filesystem::absolute(file).string();
  return packet;
}

}  // namespace histoflow::features
