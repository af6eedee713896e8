#include "histoflow/slides/slide_kinds.hpp"

namespace histoflow::slides {
namespace {

// What slide_source puts on a slide; the tiler passes it on to the slide's tiles and grid.
std::vector<AttributeSpec> manifest_attributes(bool required) {
  const auto attribute = required ? required_attribute : optional_attribute;
  return {
      attribute("slide_id", AttributeType::String, "the slide's id in the manifest"),
      attribute("path", AttributeType::String, "the slide file"),
      attribute("slide_fingerprint", AttributeType::String, "size and modification time of the file: its identity for caches"),
      attribute("patient", AttributeType::String, "the patient the slide belongs to (folds are by patient)"),
      optional_attribute("cohort", AttributeType::String, "the manifest's cohort column (\"external\" for an external test cohort)"),
      optional_attribute("label:", AttributeType::String, "a label column of the manifest, label:<column>"),
  };
}

std::vector<AttributeSpec> tiling_attributes() {
  return {
      required_attribute("tiles", AttributeType::Int, "number of tiles in the grid"),
      required_attribute("read_size", AttributeType::Int, "pixels read per tile side at read_level"),
      required_attribute("tile_size", AttributeType::Int, "pixels per tile side after resampling to mpp"),
      required_attribute("stride", AttributeType::Int, "grid step in tile_size pixels"),
      required_attribute("slide_mpp", AttributeType::Float, "microns per pixel of level 0"),
      required_attribute("extent_level0", AttributeType::Float, "a tile's side in level-0 pixels"),
      required_attribute("read_level", AttributeType::Int, "the pyramid level tiles are read from"),
      required_attribute("read_downsample", AttributeType::Float, "that level's downsample"),
      required_attribute("min_tissue", AttributeType::Float, "tissue fraction a tile needed"),
      required_attribute("mask_threshold", AttributeType::Int, "the tissue mask's threshold (Otsu or given)"),
      required_attribute("vendor", AttributeType::String, "OpenSlide's vendor of the file"),
      required_attribute("levels", AttributeType::String, "the pyramid: WxH @downsample per level"),
      required_attribute("mpp_source", AttributeType::String, "where slide_mpp came from: a property, manifest or assume_mpp"),
      optional_attribute("objective_power", AttributeType::Float, "the scanner's objective power, when the file says"),
  };
}

}  // namespace

std::vector<PacketKind> slide_kinds() {
  PacketKind slide;
  slide.name = kSlideKind;
  slide.summary = "one slide of a cohort manifest: file, patient, labels";
  slide.doc = "Emitted by slide_source, one per manifest row; tissue_tiler cuts it into tiles.";
  slide.attributes = manifest_attributes(true);
  slide.attributes.push_back(optional_attribute("mpp", AttributeType::Float, "microns per pixel from the manifest"));

  PacketKind ref;
  ref.name = kTileRefKind;
  ref.summary = "where to read one tile: slide, level-0 position and level";
  ref.doc = "Emitted by tissue_tiler (under the graph's tile budget) and slide_tile_sampler; tile_reader reads the pixels.\n"
            "provenance.tile holds x, y (level 0), the read level and the tile's level-0 extent. tile_reader sends the\n"
            "references of tiles it had to skip (on_tile_error = \"skip_tile\") on to slide_store, with read_error.";
  ref.tile_provenance = true;
  ref.attributes = manifest_attributes(false);
  for (auto attribute : {required_attribute("read_size", AttributeType::Int, "pixels to read per side at the level"),
                         required_attribute("tile_size", AttributeType::Int, "pixels per side after resampling"),
                         required_attribute("mpp", AttributeType::Float, "microns per pixel of the tile"),
                         required_attribute("tile_index", AttributeType::Int, "position in the slide's grid"),
                         required_attribute("tiles_in_slide", AttributeType::Int, "tiles of the slide"),
                         optional_attribute("read_error", AttributeType::String,
                                            "why the tile could not be read (tile_reader's output 'skipped')")})
    ref.attributes.push_back(std::move(attribute));

  PacketKind grid;
  grid.name = kGridKind;
  grid.summary = "one slide's tile grid: level-0 positions of its tiles and how they were cut";
  grid.doc = "Emitted by tissue_tiler (output 'grid') once per slide; slide_store writes it beside the features\n"
             "(the coords of CLAM/TRIDENT files), grid_writer saves it.";
  grid.tensor = TensorSpec{{DType::Int64}, 2, {-1, 2}, false, "int64 [tiles, 2] level-0 (x, y) of each tile"};
  grid.attributes = manifest_attributes(false);
  for (auto attribute : tiling_attributes()) grid.attributes.push_back(std::move(attribute));
  grid.attributes.push_back(required_attribute("mpp", AttributeType::Float, "microns per pixel of the tiles"));
  return {std::move(slide), std::move(ref), std::move(grid)};
}

}  // namespace histoflow::slides
