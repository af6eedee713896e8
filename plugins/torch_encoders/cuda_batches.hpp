#pragma once
// The encoder's CUDA path: one batch of tiles is encoded as micro-batches, each on a CUDA stream of its own with
// its own pinned host buffers (tiles in, features out). The buffers are allocated once and reused for every
// batch, so the host never stages through pageable memory, and the copies are asynchronous: while one
// micro-batch's forward pass runs, the next one's tiles go to the GPU and the previous one's features come back.
// A call still returns the features of the whole batch it was given, so the stage keeps one output per input
// batch.
// Only c10's device-generic stream API is used (no CUDA header): this compiles against a CPU-only LibTorch, and
// nothing here touches CUDA until a CudaBatches is made for a CUDA device.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace histoflow::torch_encoders {

// [begin, end) ranges cutting n tiles into at most `parts` consecutive micro-batches of near-equal size (the
// larger ones first), none smaller than `min_size` unless n itself is.
std::vector<std::pair<std::int64_t, std::int64_t>> micro_batches(std::int64_t n, int parts, std::int64_t min_size);

class CudaBatches {
 public:
  // Preprocessing and forward pass: uint8 [rows, H, W, 3] tiles on the device in, [rows, D] features on the
  // device out. Called in inference mode with the micro-batch's stream current.
  using Encode = std::function<torch::Tensor(const torch::Tensor& tiles)>;

  // Micro-batches smaller than this are not worth a stream of their own.
  static constexpr std::int64_t kMinMicroBatch = 8;

  CudaBatches(torch::Device device, int streams);
  ~CudaBatches();
  CudaBatches(const CudaBatches&) = delete;
  CudaBatches& operator=(const CudaBatches&) = delete;

  // Encodes tiles of height x width x 3 bytes each (all the same size) and returns their features as float32
  // [tiles, D] on the CPU, in the order given.
  torch::Tensor encode(const std::vector<const std::uint8_t*>& tiles, std::int64_t height, std::int64_t width, const Encode& encode);

  int streams() const { return static_cast<int>(slots_.size()); }
  // Pinned buffers allocated so far: each slot's grow to the largest micro-batch seen and are then reused.
  std::int64_t pinned_allocations() const { return pinned_allocations_; }

 private:
  struct Slot {
    c10::Stream stream;
    torch::Tensor tiles_in;      // pinned uint8
    torch::Tensor features_out;  // pinned float32
    std::int64_t begin = 0, rows = 0, width = 0;  // the micro-batch in flight on this slot (rows 0: none)
  };
  // Waits for the slot's micro-batch and copies its features into `features`.
  void collect(Slot& slot, torch::Tensor& features);
  // Waits for every slot's stream without collecting (after a failure: a pinned buffer may still be in a copy).
  void drain() noexcept;
  void ensure_pinned(torch::Tensor& buffer, std::int64_t elements, torch::Dtype dtype);

  torch::Device device_;
  std::vector<Slot> slots_;
  std::int64_t pinned_allocations_ = 0;
};

}  // namespace histoflow::torch_encoders
