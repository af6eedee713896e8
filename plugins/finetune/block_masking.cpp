#include "block_masking.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace histoflow::finetune {

BlockMasking::BlockMasking(int grid, MaskingConfig config, std::uint64_t seed) : grid_(grid), config_(config), engine_(seed) {
  if (grid < 1) throw std::invalid_argument("masking needs a patch grid");
  if (!(config.ratio_min >= 0 && config.ratio_min <= config.ratio_max && config.ratio_max <= 1))
    throw std::invalid_argument("mask ratios must satisfy 0 <= min <= max <= 1");
  if (!(config.probability >= 0 && config.probability <= 1)) throw std::invalid_argument("mask probability must lie in [0, 1]");
}

double BlockMasking::uniform(double low, double high) {
  return low + (high - low) * (static_cast<double>(engine_() >> 11) * 0x1.0p-53);
}

// One block (MaskingGenerator._mask): up to ten tries at a block of random area and aspect that adds at most
// max_patches new patches.
int BlockMasking::mask_one(std::vector<char>& mask, int max_patches) {
  int added = 0;
  const double log_min = std::log(config_.min_aspect), log_max = std::log(1.0 / config_.min_aspect);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double area = uniform(config_.min_patches, max_patches);
    const double aspect = std::exp(uniform(log_min, log_max));
    const int h = static_cast<int>(std::lround(std::sqrt(area * aspect)));
    const int w = static_cast<int>(std::lround(std::sqrt(area / aspect)));
    if (w < grid_ && h < grid_) {
      const int top = static_cast<int>(engine_() % static_cast<std::uint64_t>(grid_ - h + 1));
      const int left = static_cast<int>(engine_() % static_cast<std::uint64_t>(grid_ - w + 1));
      int already = 0;
      for (int i = top; i < top + h; ++i)
        for (int j = left; j < left + w; ++j) already += mask[i * grid_ + j];
      if (h * w - already > 0 && h * w - already <= max_patches) {
        for (int i = top; i < top + h; ++i)
          for (int j = left; j < left + w; ++j)
            if (!mask[i * grid_ + j]) mask[i * grid_ + j] = 1, ++added;
      }
      if (added > 0) break;
    }
  }
  return added;
}

std::vector<char> BlockMasking::make_mask(int patches) {
  std::vector<char> mask(static_cast<std::size_t>(grid_ * grid_), 0);
  // The official generator caps each block at half the grid (max_num_patches = 0.5 * grid * grid).
  const int block_cap = static_cast<int>(0.5 * grid_ * grid_);
  int count = 0;
  while (count < patches) {
    const int delta = mask_one(mask, std::min(patches - count, block_cap));
    if (delta == 0) break;
    count += delta;
  }
  return mask;
}

CropMasks BlockMasking::next(std::int64_t crops) {
  const int tokens = grid_ * grid_;
  const auto masked_crops = static_cast<std::int64_t>(static_cast<double>(crops) * config_.probability);
  std::vector<std::vector<char>> masks;
  for (std::int64_t i = 0; i < masked_crops; ++i) {
    // linspace(min, max, masked + 1): crop i draws its ratio from [p_i, p_i+1].
    const double step = (config_.ratio_max - config_.ratio_min) / static_cast<double>(masked_crops);
    const double low = config_.ratio_min + step * static_cast<double>(i);
    const double high = i + 1 == masked_crops ? config_.ratio_max : config_.ratio_min + step * static_cast<double>(i + 1);
    masks.push_back(make_mask(static_cast<int>(tokens * uniform(low, high))));
  }
  for (std::int64_t i = masked_crops; i < crops; ++i) masks.push_back(make_mask(0));
  std::shuffle(masks.begin(), masks.end(), engine_);
  auto tensor = torch::zeros({crops, tokens}, torch::kBool);
  auto data = tensor.accessor<bool, 2>();
  for (std::int64_t c = 0; c < crops; ++c)
    for (int t = 0; t < tokens; ++t) data[c][t] = masks[static_cast<std::size_t>(c)][static_cast<std::size_t>(t)] != 0;
  return crop_masks(tensor);
}

CropMasks crop_masks(const torch::Tensor& masks) {
  CropMasks out;
  out.masks = masks.to(torch::kBool);
  out.indices = out.masks.flatten().nonzero().flatten();
  out.masked = out.indices.size(0);
  const auto per_crop = out.masks.sum(-1).clamp_min(1).to(torch::kFloat);
  out.weights = (1.0 / per_crop).unsqueeze(-1).expand_as(out.masks).masked_select(out.masks);
  return out;
}

std::string BlockMasking::state() const {
  std::ostringstream text;
  text << engine_;
  return text.str();
}

void BlockMasking::restore(const std::string& state) {
  std::istringstream text(state);
  text >> engine_;
  if (!text) throw std::runtime_error("a checkpoint's masking state cannot be read");
}

}  // namespace histoflow::finetune
