#include "model_file.hpp"

#include "histoflow/sha256.hpp"
#include "histoflow/torch_encoders/convert.hpp"

namespace histoflow::mil {

std::string save_aggregator(const std::filesystem::path& file, const TrainedModel& trained,
                            const std::map<std::string, std::string>& metadata) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& item : trained.model->named_parameters()) tensors.emplace(item.key(), item.value().to(torch::kFloat32));
  if (trained.input_mean.defined()) {
    tensors.emplace("input_mean", trained.input_mean.to(torch::kFloat32));
    tensors.emplace("input_std", trained.input_std.to(torch::kFloat32));
  }
  torch_encoders::write_tensor_file(file, tensors, metadata);
  return sha256_file(file);
}

}  // namespace histoflow::mil
