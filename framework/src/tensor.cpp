#include "histoflow/tensor.hpp"

#include <cstring>
#include <sstream>
#include <stdexcept>

namespace histoflow {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::UInt8: return 1;
    case DType::Float16:
    case DType::BFloat16: return 2;
    case DType::Int32:
    case DType::Float32: return 4;
    case DType::Int64:
    case DType::Float64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::UInt8: return "uint8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "?";
}

std::string Device::to_string() const {
  return kind == Kind::CPU ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::vector<std::int64_t> Tensor::contiguous_strides(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

Tensor Tensor::zeros(DType dtype, std::vector<std::int64_t> shape) {
  Tensor t;
  t.dtype_ = dtype;
  for (auto extent : shape)
    if (extent < 0) throw std::invalid_argument("Tensor::zeros: negative extent");
  t.strides_ = contiguous_strides(shape);
  t.shape_ = std::move(shape);
  const std::size_t bytes = t.nbytes();
  // One allocation, value-initialised; at least one byte so that an empty tensor is still `defined`.
  std::shared_ptr<std::byte[]> buffer(new std::byte[bytes == 0 ? 1 : bytes]());
  t.data_ = buffer.get();
  t.owner_ = std::shared_ptr<void>(buffer, buffer.get());
  return t;
}

Tensor Tensor::wrap(void* data, DType dtype, std::vector<std::int64_t> shape, std::vector<std::int64_t> strides,
                    std::shared_ptr<void> owner, Device device) {
  if (strides.empty() && !shape.empty()) strides = contiguous_strides(shape);
  if (strides.size() != shape.size()) throw std::invalid_argument("Tensor::wrap: shape and strides differ in rank");
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.strides_ = std::move(strides);
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.device_ = device;
  return t;
}

std::int64_t Tensor::numel() const {
  std::int64_t n = 1;
  for (auto extent : shape_) n *= extent;
  return shape_.empty() && data_ == nullptr ? 0 : n;
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void Tensor::check_dtype(DType expected) const {
  if (expected != dtype_)
    throw std::invalid_argument(std::string("tensor has dtype ") + dtype_name(dtype_) + ", expected " +
                                dtype_name(expected));
}

void Tensor::check_contiguous_cpu() const {
  if (device_.kind != Device::Kind::CPU) throw std::invalid_argument("tensor is on " + device_.to_string());
  if (!is_contiguous()) throw std::invalid_argument("tensor " + describe() + " is not contiguous");
}

std::string Tensor::describe() const {
  std::ostringstream out;
  out << dtype_name(dtype_) << '[';
  for (std::size_t i = 0; i < shape_.size(); ++i) out << (i ? ", " : "") << shape_[i];
  out << "] " << device_.to_string();
  return out.str();
}

}  // namespace histoflow
