#include "model_file.hpp"

#include "histoflow/sha256.hpp"
#include "safetensors.hpp"

namespace histoflow::mil {

std::string save_aggregator(const std::filesystem::path& file, const TrainedModel& trained,
                            const std::map<std::string, std::string>& metadata) {
  std::map<std::string, torchenc::SafetensorsBlob> tensors;
  std::vector<std::pair<std::string, torch::Tensor>> items;
  for (const auto& item : trained.model->named_parameters()) items.emplace_back(item.key(), item.value());
  if (trained.input_mean.defined()) {
    items.emplace_back("input_mean", trained.input_mean);
    items.emplace_back("input_std", trained.input_std);
  }
  for (const auto& [name, tensor] : items) {
    const auto values = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    torchenc::SafetensorsBlob blob;
    blob.dtype = "F32";
    blob.shape.assign(values.sizes().begin(), values.sizes().end());
    blob.bytes.assign(static_cast<const char*>(values.data_ptr()), values.numel() * sizeof(float));
    tensors.emplace(name, std::move(blob));
  }
  torchenc::write_safetensors(file, tensors, metadata);
  return sha256_file(file);
}

}  // namespace histoflow::mil
