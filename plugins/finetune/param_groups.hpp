#pragma once
// DINOv2's parameter groups (dinov2/utils/param_groups.py) and its AdamW (torch.optim.AdamW, multi-tensor):
// per parameter an lr multiplier decay^(L + 1 - layer) (embeddings and tokens are layer 0, block i is layer
// i + 1, everything else L + 1), times patch_embed_lr_mult on the patch embedding; no weight decay on biases,
// norms and LayerScale gammas; the last layer of a head follows its own (frozen at first) lr schedule.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace histoflow::finetune {

struct ParameterGroup {
  std::string name;            // prefixed by its module: backbone., dino_head., ibot_head.
  torch::Tensor parameter;
  double lr_multiplier = 1.0;
  double wd_multiplier = 1.0;
  bool last_layer = false;
};

// `blocks` is the backbone's depth (0 for a head: every parameter gets multiplier 1).
std::vector<ParameterGroup> parameter_groups(torch::nn::Module& module, const std::string& module_name, int blocks,
                                             double layer_decay, double patch_embed_lr_mult);

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class AdamW {
 public:
  AdamW(std::vector<ParameterGroup> groups, AdamWOptions options);
  // One step with the schedules' values: lr (or last_layer_lr) x lr_multiplier, wd x wd_multiplier. Parameters
  // without a gradient are skipped, as in PyTorch.
  void step(double lr, double weight_decay, double last_layer_lr);
  void zero_grad();  // gradients to none
  const std::vector<ParameterGroup>& groups() const { return groups_; }
  // Moments and step counts, by parameter name, for checkpoints.
  std::map<std::string, torch::Tensor> state() const;
  void restore(const std::map<std::string, torch::Tensor>& state);

 private:
  struct Moments {
    torch::Tensor exp_avg, exp_avg_sq;
    std::int64_t steps = 0;
  };
  std::vector<ParameterGroup> groups_;
  std::vector<Moments> moments_;
  AdamWOptions options_;
};

}  // namespace histoflow::finetune
