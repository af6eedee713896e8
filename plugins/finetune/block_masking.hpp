#pragma once
// iBOT's masks as the official collate makes them (dinov2/data/collate.py, dinov2/data/masking.py): a share of
// the global crops is masked, with ratios spread evenly over [min, max]; each mask is grown from BEiT-style
// random blocks (at least 4 patches, aspect ratio in [0.3, 1/0.3]); the masks are shuffled over the crops.
// Seeded: the generator's state is part of a training checkpoint.
#include <torch/torch.h>

#include <random>
#include <string>

namespace histoflow::finetune {

struct MaskingConfig {
  double probability = 0.5;   // share of the global crops that are masked
  double ratio_min = 0.1;
  double ratio_max = 0.5;
  int min_patches = 4;        // smallest block
  double min_aspect = 0.3;
};

struct CropMasks {
  torch::Tensor masks;         // [crops, grid * grid] bool
  torch::Tensor indices;       // [n_masked] long: flat positions of the masked patches over all crops
  torch::Tensor weights;       // [n_masked] float: 1 / (masked patches of the patch's crop)
  std::int64_t masked = 0;
};

// Indices and per-patch weights for given masks [crops, tokens].
CropMasks crop_masks(const torch::Tensor& masks);

class BlockMasking {
 public:
  BlockMasking(int grid, MaskingConfig config, std::uint64_t seed);
  CropMasks next(std::int64_t crops);        // masks for one batch of global crops
  std::string state() const;                 // the random engine, as text
  void restore(const std::string& state);

 private:
  int mask_one(std::vector<char>& mask, int max_patches);
  std::vector<char> make_mask(int patches);
  double uniform(double low, double high);

  int grid_;
  MaskingConfig config_;
  std::mt19937_64 engine_;
};

}  // namespace histoflow::finetune
