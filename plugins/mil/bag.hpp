#pragma once
// A MIL bag: the tile features of one slide, or of all slides of one patient.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace histoflow::mil {

struct Bag {
  std::string id;                     // the slide id, or the patient id for patient bags
  std::string patient;
  std::vector<std::string> slides;    // slide ids in this bag
  std::int64_t label = 0;             // class index
  torch::Tensor features;             // float32 [N, D] on the CPU
  std::vector<std::int64_t> coords;   // N * 2: level-0 x, y of each tile (for heatmaps)
  std::vector<std::int32_t> tile_slide;  // N: index into `slides` of each tile's slide
};

// A float32 [rows, dim] tensor that takes over `values`' memory: a bag's features without a second copy.
inline torch::Tensor adopt_as_tensor(std::vector<float>&& values, std::int64_t rows, std::int64_t dim) {
  auto owner = std::make_shared<std::vector<float>>(std::move(values));
  float* data = owner->data();
  return torch::from_blob(data, {rows, dim}, [owner](void*) mutable { owner.reset(); }, torch::kFloat32);
}

}  // namespace histoflow::mil
