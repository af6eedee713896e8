#pragma once
// A framework-owned n-dimensional array: dtype, shape, strides, a shared buffer and a device.
// LibTorch plugins wrap it with torch::from_blob (keeping `storage` alive in the deleter) without a copy,
// and hand torch tensors back by storing the torch tensor itself as the owner of the buffer.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace histoflow {

enum class DType : std::uint8_t { UInt8, Int32, Int64, Float16, BFloat16, Float32, Float64 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

struct Device {
  enum class Kind : std::uint8_t { CPU, CUDA };
  Kind kind = Kind::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
  std::string to_string() const;
};

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::UInt8; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::Int32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }

class Tensor {
 public:
  Tensor() = default;

  // A new contiguous CPU tensor, zero-filled.
  static Tensor zeros(DType dtype, std::vector<std::int64_t> shape);
  // Wraps memory owned by `owner` (for example a torch tensor or an mmapped file) without copying.
  static Tensor wrap(void* data, DType dtype, std::vector<std::int64_t> shape, std::vector<std::int64_t> strides,
                     std::shared_ptr<void> owner, Device device = {});

  bool defined() const { return owner_ != nullptr || data_ != nullptr; }
  DType dtype() const { return dtype_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  const std::vector<std::int64_t>& strides() const { return strides_; }  // in elements
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  std::int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  const Device& device() const { return device_; }
  bool is_contiguous() const;
  const std::shared_ptr<void>& owner() const { return owner_; }

  void* raw_data() const { return data_; }
  template <typename T> T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(data_);
  }
  template <typename T> std::span<T> span() const {
    check_contiguous_cpu();
    return {data<T>(), static_cast<std::size_t>(numel())};
  }

  std::string describe() const;  // "uint8[224, 224, 3] cpu"

  static std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& shape);

 private:
  void check_dtype(DType expected) const;
  void check_contiguous_cpu() const;

  DType dtype_ = DType::Float32;
  std::vector<std::int64_t> shape_;
  std::vector<std::int64_t> strides_;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
  Device device_;
};

}  // namespace histoflow
