#include "histoflow/torch_encoders/convert.hpp"

#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/safetensors.hpp"
#include "histoflow/torch_encoders/weights.hpp"

namespace histoflow::torch_encoders {
namespace {

std::string safetensors_dtype(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kFloat64: return "F64";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: throw std::runtime_error(std::string("cannot store dtype ") + c10::toString(t.scalar_type()) + " in safetensors");
  }
}

}  // namespace

SafetensorsBlob tensor_blob(const torch::Tensor& tensor) {
  const auto t = tensor.detach().to(torch::kCPU).contiguous();
  return {safetensors_dtype(t), t.sizes().vec(), std::string(static_cast<const char*>(t.data_ptr()), t.nbytes())};
}

void write_tensor_file(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::map<std::string, SafetensorsBlob> blobs;
  for (const auto& [name, tensor] : tensors) blobs.emplace(name, tensor_blob(tensor));
  write_safetensors(file, blobs, metadata);
}

ConversionReport convert_to_safetensors(const std::filesystem::path& source, const std::filesystem::path& target,
                                        const std::string& backbone) {
  const LoadedWeights weights = read_weights(source);
  ConversionReport report{0, weights.nesting, "", weights.sha256};
  std::map<std::string, SafetensorsBlob> blobs;
  if (backbone.empty()) {
    for (const auto& [name, tensor] : weights.tensors) blobs.emplace(name, tensor_blob(tensor));
  } else {
    auto model = find_backbone(backbone).create();
    report.prefix = load_into(*model, weights, source);
    for (const auto& p : model->module().named_parameters(true)) blobs.emplace(p.key(), tensor_blob(p.value()));
    for (const auto& b : model->module().named_buffers(true)) blobs.emplace(b.key(), tensor_blob(b.value()));
  }
  report.tensors = blobs.size();
  write_safetensors(target, blobs,
                    {{"converted_by", "histoflow convert_weights"}, {"source", source.filename().string()},
                     {"source_sha256", weights.sha256}, {"backbone", backbone}});
  return report;
}

}  // namespace histoflow::torch_encoders
