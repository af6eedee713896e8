#pragma once
// A MIL bag: the tile features of one slide, or of all slides of one patient.
#include <torch/torch.h>

#include <cstdint>
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

}  // namespace histoflow::mil
