#pragma once
// The finetuning recipe: every setting of DINOv2's ssl_default_config.yaml that the training step uses, with the
// defaults of the study (docs/finetune.md lists each one and where it comes from). Read from a TOML table whose
// sections mirror the official YAML; an unknown key or a wrong type is an error at file:line:column.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "block_masking.hpp"
#include "dino_head.hpp"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace histoflow::finetune {

struct SslConfig {
  // [model]
  std::string backbone = "dinov2_vits14";
  std::string weights;                 // start (student = teacher) from these; empty with synthetic_weights
  bool synthetic_weights = false;      // histoflow-init-v1 weights (tests, benchmarks)
  std::string position_resize = "bicubic";
  double drop_path_rate = 0.4;         // the config's 0.4 (the fork's hub models ran with 0)
  bool drop_path_uniform = true;
  // [crops]
  int global_size = 224;
  int local_size = 98;
  int local_number = 8;
  // [dino]
  double dino_loss_weight = 1.0;
  DinoHeadConfig dino_head;
  double koleo_loss_weight = 0.1;
  double koleo_eps = 1e-8;             // normalisation and log epsilon (official)
  double koleo_distance_eps = 1e-4;    // the pairwise distance's epsilon: the fork's change (official 1e-8)
  // [ibot]
  double ibot_loss_weight = 1.0;
  MaskingConfig masking;
  bool ibot_separate_head = false;
  DinoHeadConfig ibot_head;
  // [train]
  int batch_size = 256;                // images per step (per process)
  std::string centering = "sinkhorn_knopp";  // or "centering"
  int sinkhorn_iterations = 3;
  double student_temp = 0.1;
  double center_momentum = 0.9;
  std::int64_t epoch_length = 100;     // OFFICIAL_EPOCH_LENGTH
  std::uint64_t seed = 0;
  // [teacher]
  double momentum_teacher = 0.994;
  double final_momentum_teacher = 1.0;
  double warmup_teacher_temp = 0.04;
  double teacher_temp = 0.07;
  double warmup_teacher_temp_epochs = 30;
  // [optim]
  double epochs = 100;
  double base_lr = 2e-4;
  double min_lr = 1e-6;
  double warmup_epochs = 10;
  double weight_decay = 0.04;
  double weight_decay_end = 0.2;
  double clip_grad = 3.0;
  double freeze_last_layer_epochs = 1;
  std::string scaling_rule = "sqrt_wrt_1024";
  double patch_embed_lr_mult = 0.2;
  double layerwise_decay = 0.9;
  double adamw_beta1 = 0.9;
  double adamw_beta2 = 0.999;
  // [compute]
  std::string device = "cpu";
  std::string precision = "fp32";      // fp32, bf16 (CPU and GPU), fp16 (GPU, with a gradient scaler)
  int threads = 0;                     // intra-op threads; 0 keeps LibTorch's setting

  double lr() const;                   // base_lr after the scaling rule
  std::int64_t total_iterations() const;
};

// Every key parse_ssl_config reads, with its value type: what the finetuning stage offers as parameters.
enum class RecipeKeyType { Int, Float, Bool, String, FloatList };
struct RecipeKey {
  std::string section, key;
  RecipeKeyType type;
};
std::vector<RecipeKey> ssl_recipe_keys();

// Reads a config from a TOML table; `source` names the file in errors.
SslConfig parse_ssl_config(const toml::table& table, const std::string& source);
SslConfig read_ssl_config(const std::filesystem::path& file);
// Checks values that depend on each other (crop sizes on the patch grid are checked with the backbone).
void validate_ssl_config(const SslConfig& config);
// The config as TOML text (recorded in checkpoints and model cards).
std::string ssl_config_toml(const SslConfig& config);

}  // namespace histoflow::finetune
