#include "teacher_export.hpp"

#include <torch/serialize.h>

#include <nlohmann/json.hpp>

#include "histoflow/atomic_file.hpp"
#include "histoflow/sha256.hpp"
#include "histoflow/torch_encoders/convert.hpp"

namespace histoflow::finetune {

ExportedTeacher export_teacher(SslTrainer& trainer, const std::filesystem::path& folder, const std::string& data_lineage) {
  std::filesystem::create_directories(folder);
  auto& teacher = trainer.model().teacher();
  const auto& config = trainer.config();
  ExportedTeacher out{folder / "teacher_backbone.safetensors", folder / "teacher_checkpoint.pth", folder / "model_card.json"};

  std::map<std::string, torch::Tensor> backbone;
  auto& module = teacher.backbone->module();
  for (const auto& p : module.named_parameters(true)) backbone[p.key()] = p.value().detach().to(torch::kCPU, torch::kFloat32);
  for (const auto& b : module.named_buffers(true)) backbone[b.key()] = b.value().detach().to(torch::kCPU);
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"histoflow_backbone", config.backbone},
                                                    {"histoflow_finetune_iterations", std::to_string(trainer.iteration())}};
  torch_encoders::write_tensor_file(out.backbone, backbone, metadata);

  c10::Dict<std::string, at::Tensor> state;
  for (auto& [name, p] : teacher.named_parameters()) state.insert(name, p.detach().to(torch::kCPU, torch::kFloat32).contiguous());
  c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::DictType::create(c10::StringType::get(), c10::TensorType::get()));
  checkpoint.insert("teacher", state);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(checkpoint));
  write_file_atomically(out.checkpoint, std::string(bytes.begin(), bytes.end()));

  nlohmann::json card{
      {"format", "histoflow-model-card-v1"},
      {"backbone", config.backbone},
      {"source_weights", config.synthetic_weights ? "histoflow-init-v1 (synthetic)" : config.weights},
      {"source_sha256", trainer.model().source_sha256()},
      {"recipe", "DINOv2 self-supervised finetuning (DINO + iBOT + KoLeo), facebookresearch/dinov2 train/ssl_meta_arch.py"},
      {"config", ssl_config_toml(config)},
      {"iterations", trainer.iteration()},
      {"images_seen", trainer.iteration() * config.batch_size},
      {"input_size", config.global_size},
      {"position_grid", trainer.model().grid()},
      {"data_lineage", data_lineage},
      {"files",
       {{"teacher_backbone.safetensors", sha256_file(out.backbone)}, {"teacher_checkpoint.pth", sha256_file(out.checkpoint)}}},
  };
  write_file_atomically(out.card, card.dump(2) + "\n");
  return out;
}

}  // namespace histoflow::finetune
