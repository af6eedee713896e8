#include "histoflow/features/feature_file_kind.hpp"

namespace histoflow::features {

PacketKind feature_file_kind() {
  PacketKind kind;
  kind.name = kFeatureFileKind;
  kind.summary = "one finished feature file (HDF5) with what it holds: encoder, rows, labels";
  kind.doc =
      "Emitted by slide_store (content \"slide\": one per slide, with the manifest's patient, cohort and\n"
      "labels) and patch_store (content \"patches\": one per dataset, with its name in `dataset`), once the file\n"
      "is complete on disk, including files a previous run finished. provenance.item_id is the slide id or the\n"
      "dataset. The file layout is CLAM/TRIDENT's (docs/features.md). feature_reader emits them for files other\n"
      "tools wrote (format h5 or pt).";
  kind.attributes = {
      required_attribute("path", AttributeType::String, "the HDF5 file"),
      required_attribute("content", AttributeType::String, "\"slide\" (one slide's tiles) or \"patches\" (a patch dataset)"),
      required_attribute("encoder", AttributeType::String, "the encoder that computed the features"),
      required_attribute("rows", AttributeType::Int, "feature rows in the file"),
      required_attribute("dim", AttributeType::Int, "features per row"),
      optional_attribute("weights_sha256", AttributeType::String, "identity of the encoder's weights"),
      optional_attribute("output", AttributeType::String, "the backbone output stored: cls, pooled, ..."),
      optional_attribute("precision", AttributeType::String, "the encoder's arithmetic"),
      optional_attribute("dataset", AttributeType::String, "patch datasets: train, test, or another name"),
      optional_attribute("slide_id", AttributeType::String, "slides: the manifest's slide id"),
      optional_attribute("slide_path", AttributeType::String, "slides: the slide file"),
      optional_attribute("patient", AttributeType::String, "slides: the patient"),
      optional_attribute("cohort", AttributeType::String, "slides: the manifest's cohort"),
      optional_attribute("label:", AttributeType::String, "slides: label:<column> from this run's manifest"),
      optional_attribute("format", AttributeType::String, "how to read the file: histoflow (default: sealed, verified), h5 or pt "
                                                          "(feature_reader's CLAM and TRIDENT files)"),
      optional_attribute("coords_path", AttributeType::String, "pt files: the HDF5 file holding the rows' coordinates"),
  };
  return kind;
}

}  // namespace histoflow::features
