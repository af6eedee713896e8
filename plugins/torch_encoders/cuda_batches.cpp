#include "cuda_batches.hpp"

#include <c10/core/DeviceGuard.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace histoflow::torch_encoders {

std::vector<std::pair<std::int64_t, std::int64_t>> micro_batches(std::int64_t n, int parts, std::int64_t min_size) {
  if (n <= 0) return {};
  const std::int64_t count = std::clamp<std::int64_t>(n / std::max<std::int64_t>(min_size, 1), 1, std::max(parts, 1));
  const std::int64_t base = n / count, larger = n % count;
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  for (std::int64_t i = 0, begin = 0; i < count; ++i) {
    const std::int64_t end = begin + base + (i < larger ? 1 : 0);
    ranges.emplace_back(begin, end);
    begin = end;
  }
  return ranges;
}

namespace {
std::vector<c10::Stream> pool_streams(torch::Device device, int count) {
  if (!device.is_cuda()) throw std::invalid_argument("CudaBatches needs a CUDA device, got " + device.str());
  if (count < 1) throw std::invalid_argument("CudaBatches needs at least one stream");
  // Streams from LibTorch's pool: they do not synchronise with the legacy default stream, so the model must be
  // ready on the device before they start (shared_model synchronises after loading).
  c10::impl::VirtualGuardImpl guard(device.type());
  std::vector<c10::Stream> streams;
  for (int i = 0; i < count; ++i) streams.push_back(guard.getStreamFromGlobalPool(device, /*isHighPriority=*/false));
  return streams;
}
}  // namespace

CudaBatches::CudaBatches(torch::Device device, int streams) : device_(device) {
  for (const c10::Stream& stream : pool_streams(device, streams)) slots_.push_back(Slot{stream, {}, {}, 0, 0, 0});
  // What the stage made on the default stream before (normalisation constants) is then ready on the pool's.
  torch::cuda::synchronize(device.index());
}

CudaBatches::~CudaBatches() { drain(); }

void CudaBatches::ensure_pinned(torch::Tensor& buffer, std::int64_t elements, torch::Dtype dtype) {
  if (buffer.defined() && buffer.numel() >= elements) return;
  buffer = torch::empty({elements}, torch::TensorOptions().dtype(dtype).pinned_memory(true));
  ++pinned_allocations_;
}

void CudaBatches::collect(Slot& slot, torch::Tensor& features) {
  if (slot.rows == 0) return;
  slot.stream.synchronize();
  std::memcpy(features.data_ptr<float>() + slot.begin * slot.width, slot.features_out.data_ptr<float>(),
              static_cast<std::size_t>(slot.rows * slot.width) * sizeof(float));
  slot.rows = 0;
}

void CudaBatches::drain() noexcept {
  for (Slot& slot : slots_) {
    try {
      slot.stream.synchronize();  // also a copy in that a failed forward pass left behind
    } catch (...) {  // a failed device: nothing left to wait for
    }
    slot.rows = 0;
  }
}

torch::Tensor CudaBatches::encode(const std::vector<const std::uint8_t*>& tiles, std::int64_t height, std::int64_t width,
                                  const Encode& encode) {
  const auto n = static_cast<std::int64_t>(tiles.size());
  const std::int64_t tile_bytes = height * width * 3;
  torch::InferenceMode inference;
  c10::DeviceGuard on_device(device_);
  torch::Tensor features;  // float32 [n, D] on the CPU, made once D is known
  std::size_t used = 0;
  try {
    for (const auto& [begin, end] : micro_batches(n, streams(), kMinMicroBatch)) {
      Slot& slot = slots_[used++ % slots_.size()];
      collect(slot, features);  // its previous micro-batch: then its buffers are free again
      const std::int64_t rows = end - begin;
      ensure_pinned(slot.tiles_in, rows * tile_bytes, torch::kUInt8);
      auto* staged = slot.tiles_in.data_ptr<std::uint8_t>();
      for (std::int64_t i = begin; i < end; ++i) std::memcpy(staged + (i - begin) * tile_bytes, tiles[static_cast<std::size_t>(i)], tile_bytes);

      c10::StreamGuard on_stream(slot.stream);
      const auto host = slot.tiles_in.narrow(0, 0, rows * tile_bytes).view({rows, height, width, 3});
      const torch::Tensor out = encode(host.to(device_, /*non_blocking=*/true)).to(torch::kFloat32).contiguous();
      if (out.dim() != 2 || out.size(0) != rows)
        throw std::runtime_error("the encoder gave features of shape " + c10::str(out.sizes()) + " for " + std::to_string(rows) + " tiles");
      if (!features.defined()) features = torch::empty({n, out.size(1)}, torch::kFloat32);
      ensure_pinned(slot.features_out, rows * out.size(1), torch::kFloat32);
      slot.features_out.narrow(0, 0, rows * out.size(1)).view({rows, out.size(1)}).copy_(out, /*non_blocking=*/true);
      slot.begin = begin, slot.rows = rows, slot.width = out.size(1);
    }
    for (Slot& slot : slots_) collect(slot, features);
  } catch (...) {
    drain();
    throw;
  }
  return features;
}

}  // namespace histoflow::torch_encoders
