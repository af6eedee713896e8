#pragma once
// The `ssl_crops` packet kind (declared by the augment plugin): one training image's multi-crop views, as
// DINOv2's DataAugmentationDINO returns them, before normalisation. The tensor is uint8, flat:
//   global_number crops of [global_size, global_size, 3], then local_number crops of [local_size, local_size, 3],
// each RGB row-major. normalise_crops() turns a crop into the float [3, S, S] (ImageNet mean and std) the
// network sees, exactly as torchvision's ToTensor + Normalize do.
#include <cstddef>
#include <cstdint>

#include "histoflow/kind.hpp"
#include "histoflow/packet.hpp"

namespace histoflow::augment {

inline constexpr const char* kCropsKind = "ssl_crops";
PacketKind crops_kind();  // the declaration the augment plugin registers

struct CropsLayout {
  std::int64_t global_number = 2, global_size = 224, local_number = 8, local_size = 98;
  bool operator==(const CropsLayout&) const = default;
  std::size_t global_bytes() const { return static_cast<std::size_t>(global_size * global_size * 3); }
  std::size_t local_bytes() const { return static_cast<std::size_t>(local_size * local_size * 3); }
  std::size_t total_bytes() const { return global_number * global_bytes() + local_number * local_bytes(); }
  // Byte offset of crop `index` (globals first, then locals) in the flat tensor.
  std::size_t offset(std::int64_t index) const {
    return index < global_number ? index * global_bytes() : global_number * global_bytes() + (index - global_number) * local_bytes();
  }
};

// The layout a packet's attributes declare, checked against its tensor's size (throws naming the item).
CropsLayout crops_layout_of(const Packet& packet);
void set_crops_layout(Packet& packet, const CropsLayout& layout);

// ToTensor + Normalize(mean 0.485 0.456 0.406, std 0.229 0.224 0.225) of one uint8 [S, S, 3] crop into
// float [3, S, S] at `out`.
void normalise_crop(const std::uint8_t* rgb, std::int64_t size, float* out);

}  // namespace histoflow::augment
