#include "data_parallel.hpp"

#include <stdexcept>
#include <string>

namespace histoflow::finetune {
namespace {

// Rows [block * images + begin, block * images + end) of every block of a crop-major tensor.
torch::Tensor share_of_blocks(const torch::Tensor& rows, std::int64_t images, std::int64_t begin, std::int64_t end) {
  if (!rows.defined() || rows.size(0) == 0) return rows;
  const std::int64_t blocks = rows.size(0) / images;
  std::vector<torch::Tensor> parts;
  for (std::int64_t block = 0; block < blocks; ++block) parts.push_back(rows.slice(0, block * images + begin, block * images + end));
  return torch::cat(parts).contiguous();
}

}  // namespace

SslBatch rank_share(const SslBatch& global, int rank, int world) {
  const std::int64_t images = global.global_crops.size(0) / 2;
  if (images % world != 0)
    throw std::invalid_argument("a global batch of " + std::to_string(images) + " images does not divide among " + std::to_string(world) +
                                " processes: make batch_size a multiple of the process count");
  const std::int64_t share = images / world, begin = rank * share, end = begin + share;
  SslBatch mine;
  mine.global_crops = share_of_blocks(global.global_crops, images, begin, end);
  mine.local_crops = share_of_blocks(global.local_crops, images, begin, end);
  if (global.masks.masks.defined()) mine.masks = crop_masks(share_of_blocks(global.masks.masks, images, begin, end));
  return mine;
}

void average_gradients(const std::vector<torch::Tensor>& parameters, Collectives& collectives) {
  if (collectives.world() == 1) return;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  std::vector<torch::Tensor> flat;
  for (const auto& g : grads) flat.push_back(g.reshape({-1}).to(torch::kFloat));
  auto all = torch::cat(flat);
  collectives.sum(all);
  all.div_(static_cast<double>(collectives.world()));
  std::int64_t offset = 0;
  for (auto& g : grads) {
    const auto n = g.numel();
    g.copy_(all.slice(0, offset, offset + n).view_as(g));
    offset += n;
  }
}

}  // namespace histoflow::finetune
