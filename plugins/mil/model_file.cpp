#include "model_file.hpp"

#include "histoflow/sha256.hpp"
#include "safetensors.hpp"

namespace histoflow::mil {

std::string save_aggregator(const std::filesystem::path& file, torch::nn::Module& model,
                            const std::map<std::string, std::string>& metadata) {
  std::map<std::string, torchenc::SafetensorsBlob> tensors;
  for (const auto& item : model.named_parameters()) {
    const auto values = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    torchenc::SafetensorsBlob blob;
    blob.dtype = "F32";
    blob.shape.assign(values.sizes().begin(), values.sizes().end());
    blob.bytes.assign(static_cast<const char*>(values.data_ptr()), values.numel() * sizeof(float));
    tensors.emplace(item.key(), std::move(blob));
  }
  torchenc::write_safetensors(file, tensors, metadata);
  return sha256_file(file);
}

}  // namespace histoflow::mil
