// The kinds every plugin speaks, declared by the framework: tiles of pixels and rows of features. Sources,
// transforms and encoders of any plugin produce or consume them, and the framework's batcher builds the
// row provenance of `features` (set_rows_from), so no single plugin is their owner.
#include "histoflow/kind.hpp"

namespace histoflow::detail {

std::vector<PacketKind> framework_kinds() {
  PacketKind tile;
  tile.name = kinds::kTile;
  tile.summary = "one image tile: RGB pixels with where they came from";
  tile.doc =
      "Produced by slide readers (tile_reader: provenance.tile holds the slide id and level-0 position),\n"
      "patch datasets (patch_folder: label, class and path) and generators (synthetic_tiles). Encoders and\n"
      "tile transforms consume it; batched stages receive a batch whose members are tiles.";
  tile.tensor = TensorSpec{{DType::UInt8}, 3, {-1, -1, 3}, false, "uint8 [H, W, 3] RGB, row-major"};
  tile.attributes = {
      optional_attribute("label", AttributeType::Int, "class index of a labelled patch (-1: background)"),
      optional_attribute("class", AttributeType::String, "class name of a labelled patch"),
      optional_attribute("path", AttributeType::String, "image file of a patch, or the slide file of a slide tile"),
      optional_attribute("tile_index", AttributeType::Int, "position of the tile in its slide's grid"),
      optional_attribute("tiles_in_slide", AttributeType::Int, "number of tiles of its slide"),
      optional_attribute("mpp", AttributeType::Float, "microns per pixel of the tile's pixels"),
  };

  PacketKind features;
  features.name = kinds::kFeatures;
  features.summary = "feature rows of a batch of tiles, one row per tile";
  features.doc =
      "Produced by encoders (torch_encoder, color_stats) from a batch of tiles; rows of any slides may share a\n"
      "batch, each row's provenance says which. Per-row attributes a patch dataset needs (label, class, path)\n"
      "travel in row_attributes. Stores and CSV writers consume it.";
  features.tensor = TensorSpec{{DType::Float32, DType::Float16, DType::BFloat16}, 2, {-1, -1}, true,
                               "float [rows, dims], row i from the tile of row provenance i"};
  features.attributes = {
      required_attribute("encoder", AttributeType::String, "name of the encoder (backbone) that computed the rows"),
      optional_attribute("weights_sha256", AttributeType::String, "identity of the weights ('none' for fixed transforms)"),
      optional_attribute("output", AttributeType::String, "which output of the backbone: cls, pooled, mean_patch, ..."),
      optional_attribute("precision", AttributeType::String, "arithmetic of the encoder: fp32, bf16, fp16"),
      optional_attribute("position_grid", AttributeType::Int,
                         "vision transformers: the square grid of position embeddings the weights hold (interpolated to each input's grid)"),
  };
  return {std::move(tile), std::move(features)};
}

}  // namespace histoflow::detail
