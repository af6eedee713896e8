#include <stdexcept>
#include <string>

#include "histoflow/augment/crops_kind.hpp"
#include "histoflow/kind.hpp"

namespace histoflow::augment {

CropsLayout crops_layout_of(const Packet& packet) {
  CropsLayout layout;
  layout.global_number = packet.require<std::int64_t>("global_number");
  layout.global_size = packet.require<std::int64_t>("global_size");
  layout.local_number = packet.require<std::int64_t>("local_number");
  layout.local_size = packet.require<std::int64_t>("local_size");
  if (packet.tensor.dtype() != DType::UInt8 || packet.tensor.dim() != 1 ||
      static_cast<std::size_t>(packet.tensor.shape()[0]) != layout.total_bytes())
    throw std::invalid_argument("ssl_crops packet for item '" + packet.provenance.item_id + "' carries " + packet.tensor.describe() +
                                ", not the " + std::to_string(layout.total_bytes()) + " uint8 values its attributes declare");
  return layout;
}

void set_crops_layout(Packet& packet, const CropsLayout& layout) {
  packet.attributes["global_number"] = layout.global_number;
  packet.attributes["global_size"] = layout.global_size;
  packet.attributes["local_number"] = layout.local_number;
  packet.attributes["local_size"] = layout.local_size;
}

void normalise_crop(const std::uint8_t* rgb, std::int64_t size, float* out) {
  constexpr float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  const std::int64_t plane = size * size;
  for (std::int64_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) out[c * plane + p] = (static_cast<float>(rgb[p * 3 + c]) / 255.0f - mean[c]) / std[c];
}

PacketKind crops_kind() {
  PacketKind kind;
  kind.name = kCropsKind;
  kind.summary = "one training image's multi-crop views (DINOv2's global and local crops), uint8 before normalisation";
  kind.doc =
      "Produced by multi_crop from a tile; consumed by dinov2_finetune. The tensor is flat uint8: global_number\n"
      "crops [global_size, global_size, 3], then local_number crops [local_size, local_size, 3], RGB row-major.\n"
      "Provenance is the tile's (its sequence is the sample's index in the training stream).";
  kind.tensor = TensorSpec{{DType::UInt8}, 1, {-1}, false, "uint8 [global crops then local crops, each S*S*3]"};
  kind.attributes = {
      required_attribute("global_number", AttributeType::Int, "number of global crops (2)"),
      required_attribute("global_size", AttributeType::Int, "side of a global crop in pixels"),
      required_attribute("local_number", AttributeType::Int, "number of local crops"),
      required_attribute("local_size", AttributeType::Int, "side of a local crop in pixels"),
      optional_attribute("label", AttributeType::Int, "class index of the tile, passed on (training ignores it)"),
      optional_attribute("path", AttributeType::String, "image file or slide of the tile, passed on"),
  };
  return kind;
}

}  // namespace histoflow::augment
