#pragma once
// What the slide store and the patch store share: where their files go (keyed by lineage), the encoder
// identity every row of one file must have, the attributes every file records, and the feature_file packet
// that announces a finished file.
#include <filesystem>
#include <string>

#include "histoflow/features/feature_file.hpp"
#include "histoflow/contract.hpp"
#include "histoflow/packet.hpp"
#include "histoflow/stage.hpp"

namespace histoflow::features {

// The parameters both stores take (root, dtype, verify_existing) and the folder their lineage gives.
struct StoreFolder {
  explicit StoreFolder(const StageContext& context);
  void set_lineage(const std::string& lineage);

  std::filesystem::path root, folder;  // folder = root / the lineage's first 16 hex digits
  std::string lineage;
  StorageType storage = StorageType::Float32;
  bool verify_existing = true;
};

// The encoder that computed a batch: name, weights, output and precision, as torch_encoder sets them. One
// file holds one encoder's rows: a second encoder reaching the same store is a graph mistake, refused even
// when both give rows of the same width.
class EncoderIdentity {
 public:
  // Throws FatalError naming both encoders when `batch` comes from another encoder than earlier batches.
  void check(const Packet& batch, std::int64_t dim);
  const AttributeMap& attributes() const { return attributes_; }  // encoder, weights_sha256, output, precision, position_grid
  std::int64_t dim() const { return dim_; }

 private:
  AttributeMap attributes_;
  std::int64_t dim_ = -1;
};

// The parameters both stores declare: root, dtype, verify_existing.
std::vector<ParamSpec> store_params();

// Checks that a features packet is float32 [rows, D] with one provenance per row; returns D.
std::int64_t feature_width(const Packet& batch);

// Adds rows, dim, lineage, histoflow_version and dtype to a file's attributes.
void add_file_attributes(AttributeMap& attributes, std::int64_t rows, std::int64_t dim, const StoreFolder& store);

// The packet announcing a finished file: `item` attributes that describe the slide (manifest: slide_id,
// patient, cohort, label:*, path as slide_path), `stored` the file's own (encoder, rows, dim, dataset, ...).
Packet feature_file_packet(const Provenance& provenance, const AttributeMap& item, const AttributeMap& stored,
                           const std::filesystem::path& file, const std::string& content);

// Whether an attribute of a slide comes from the manifest (and so from this run's, not the stored file's).
bool is_manifest_attribute(const std::string& key);

}  // namespace histoflow::features
