#pragma once
// What a finetuning run hands on: the teacher backbone as safetensors under the names torch_encoder loads, the
// official teacher-checkpoint layout ({"teacher": {"backbone.…", "dino_head.…"}}, a .pth PyTorch reads), and a
// model card saying where the weights came from.
#include <filesystem>
#include <string>

#include "ssl_trainer.hpp"

namespace histoflow::finetune {

struct ExportedTeacher {
  std::filesystem::path backbone;    // teacher_backbone.safetensors
  std::filesystem::path checkpoint;  // teacher_checkpoint.pth
  std::filesystem::path card;        // model_card.json
};

// `data_lineage` describes the training data (dataset name, file list digest, ...) for the card.
ExportedTeacher export_teacher(SslTrainer& trainer, const std::filesystem::path& folder, const std::string& data_lineage);

}  // namespace histoflow::finetune
