#include "param_groups.hpp"

#include <cmath>

namespace histoflow::finetune {
namespace {

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

// get_vit_lr_decay_rate with force_is_backbone (a module with blocks) on names relative to the module.
double layer_multiplier(const std::string& name, int blocks, double decay) {
  int layer = blocks + 1;
  if (blocks > 0) {
    if (contains(name, "pos_embed") || contains(name, "patch_embed") || contains(name, "mask_token") || contains(name, "cls_token") ||
        contains(name, "register_tokens"))
      layer = 0;
    else if (name.rfind("blocks.", 0) == 0 || contains(name, ".blocks."))
      layer = std::stoi(name.substr(name.find("blocks.") + 7)) + 1;
  }
  return std::pow(decay, blocks + 1 - layer);
}

}  // namespace

std::vector<ParameterGroup> parameter_groups(torch::nn::Module& module, const std::string& module_name, int blocks,
                                             double layer_decay, double patch_embed_lr_mult) {
  std::vector<ParameterGroup> groups;
  for (const auto& item : module.named_parameters(true)) {
    if (!item.value().requires_grad()) continue;
    const std::string& name = item.key();
    ParameterGroup group{module_name + "." + name, item.value(), layer_multiplier(name, blocks, layer_decay), 1.0, contains(name, "last_layer")};
    const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (bias || contains(name, "norm") || contains(name, "gamma")) group.wd_multiplier = 0.0;
    if (contains(name, "patch_embed")) group.lr_multiplier *= patch_embed_lr_mult;
    groups.push_back(std::move(group));
  }
  return groups;
}

AdamW::AdamW(std::vector<ParameterGroup> groups, AdamWOptions options) : groups_(std::move(groups)), moments_(groups_.size()), options_(options) {}

void AdamW::zero_grad() {
  for (auto& group : groups_) group.parameter.mutable_grad() = torch::Tensor();
}

void AdamW::step(double lr, double weight_decay, double last_layer_lr) {
  torch::NoGradGuard no_grad;
  const double beta1 = options_.beta1, beta2 = options_.beta2;
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    auto& group = groups_[i];
    auto& p = group.parameter;
    const auto& grad = p.grad();
    if (!grad.defined()) continue;
    auto& m = moments_[i];
    if (!m.exp_avg.defined()) {
      m.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      m.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
    ++m.steps;
    const double group_lr = (group.last_layer ? last_layer_lr : lr) * group.lr_multiplier;
    const double group_wd = weight_decay * group.wd_multiplier;
    // The order of torch.optim.AdamW's multi-tensor step (torch 1.13).
    if (group_wd != 0) p.mul_(1 - group_lr * group_wd);
    m.exp_avg.mul_(beta1).add_(grad, 1 - beta1);
    m.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const double correction1 = 1 - std::pow(beta1, static_cast<double>(m.steps));
    const double correction2 = 1 - std::pow(beta2, static_cast<double>(m.steps));
    const double step_size = (group_lr / correction1) * -1;
    auto denom = m.exp_avg_sq.sqrt().div_(std::sqrt(correction2)).add_(options_.eps);
    p.addcdiv_(m.exp_avg, denom, step_size);
  }
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> state;
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    const auto& m = moments_[i];
    if (!m.exp_avg.defined()) continue;
    state["exp_avg." + groups_[i].name] = m.exp_avg;
    state["exp_avg_sq." + groups_[i].name] = m.exp_avg_sq;
    state["steps." + groups_[i].name] = torch::tensor({m.steps}, torch::kLong);
  }
  return state;
}

void AdamW::restore(const std::map<std::string, torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    const auto& name = groups_[i].name;
    auto avg = state.find("exp_avg." + name);
    if (avg == state.end()) {
      moments_[i] = Moments{};
      continue;
    }
    const auto& p = groups_[i].parameter;
    const auto sq = state.find("exp_avg_sq." + name), steps = state.find("steps." + name);
    if (sq == state.end() || steps == state.end() || avg->second.sizes() != p.sizes() || sq->second.sizes() != p.sizes())
      throw std::runtime_error("the optimiser state of '" + name + "' is incomplete or has another shape");
    moments_[i].exp_avg = avg->second.to(p.options()).clone();
    moments_[i].exp_avg_sq = sq->second.to(p.options()).clone();
    moments_[i].steps = steps->second.item<std::int64_t>();
  }
}

}  // namespace histoflow::finetune
