#include "ssl_config.hpp"

#include <cmath>
#include <functional>
#include <map>
#include <sstream>
#include <toml++/toml.h>

namespace histoflow::finetune {
namespace {

std::string where(const std::string& source, const toml::source_region& region) {
  return source + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
}

// One key of the schema: its value type, and what reads a node into the config, throwing a message (without
// location) on a wrong type.
using Reader = std::function<void(SslConfig&, const toml::node&)>;
struct Key {
  RecipeKeyType type;
  Reader read;
};

template <class T>
Key number(T SslConfig::*field) {
  return {std::is_floating_point_v<T> ? RecipeKeyType::Float : RecipeKeyType::Int, [field](SslConfig& c, const toml::node& n) {
    if constexpr (std::is_floating_point_v<T>) {
      if (!n.is_number()) throw std::invalid_argument("expects a number");
      c.*field = n.is_integer() ? static_cast<T>(*n.value<std::int64_t>()) : static_cast<T>(*n.value<double>());
    } else {
      if (!n.is_integer()) throw std::invalid_argument("expects an integer");
      const auto v = *n.value<std::int64_t>();
      if (v < 0) throw std::invalid_argument("expects a non-negative integer");
      c.*field = static_cast<T>(v);
    }
  }};
}
Key head_number(DinoHeadConfig SslConfig::*head, int DinoHeadConfig::*field) {
  return {RecipeKeyType::Int, [head, field](SslConfig& c, const toml::node& n) {
    if (!n.is_integer() || *n.value<std::int64_t>() < 1) throw std::invalid_argument("expects a positive integer");
    (c.*head).*field = static_cast<int>(*n.value<std::int64_t>());
  }};
}
Key text(std::string SslConfig::*field) {
  return {RecipeKeyType::String, [field](SslConfig& c, const toml::node& n) {
    if (!n.is_string()) throw std::invalid_argument("expects a string");
    c.*field = *n.value<std::string>();
  }};
}
Key flag(bool SslConfig::*field) {
  return {RecipeKeyType::Bool, [field](SslConfig& c, const toml::node& n) {
    if (!n.is_boolean()) throw std::invalid_argument("expects true or false");
    c.*field = *n.value<bool>();
  }};
}

const std::map<std::string, std::map<std::string, Key>>& schema() {
  static const std::map<std::string, std::map<std::string, Key>> sections{
      {"model",
       {{"backbone", text(&SslConfig::backbone)},
        {"weights", text(&SslConfig::weights)},
        {"synthetic_weights", flag(&SslConfig::synthetic_weights)},
        {"position_resize", text(&SslConfig::position_resize)},
        {"drop_path_rate", number(&SslConfig::drop_path_rate)},
        {"drop_path_uniform", flag(&SslConfig::drop_path_uniform)}}},
      {"crops",
       {{"global_size", number(&SslConfig::global_size)},
        {"local_size", number(&SslConfig::local_size)},
        {"local_number", number(&SslConfig::local_number)}}},
      {"dino",
       {{"loss_weight", number(&SslConfig::dino_loss_weight)},
        {"head_n_prototypes", head_number(&SslConfig::dino_head, &DinoHeadConfig::prototypes)},
        {"head_hidden_dim", head_number(&SslConfig::dino_head, &DinoHeadConfig::hidden)},
        {"head_bottleneck_dim", head_number(&SslConfig::dino_head, &DinoHeadConfig::bottleneck)},
        {"head_nlayers", head_number(&SslConfig::dino_head, &DinoHeadConfig::layers)},
        {"koleo_loss_weight", number(&SslConfig::koleo_loss_weight)},
        {"koleo_eps", number(&SslConfig::koleo_eps)},
        {"koleo_distance_eps", number(&SslConfig::koleo_distance_eps)}}},
      {"ibot",
       {{"loss_weight", number(&SslConfig::ibot_loss_weight)},
        {"mask_sample_probability", {RecipeKeyType::Float, [](SslConfig& c, const toml::node& n) { if (!n.is_number()) throw std::invalid_argument("expects a number"); c.masking.probability = *n.value<double>(); }}},
        {"mask_ratio_min_max",
         {RecipeKeyType::FloatList, [](SslConfig& c, const toml::node& n) {
           const auto* a = n.as_array();
           if (!a || a->size() != 2 || !(*a)[0].is_number() || !(*a)[1].is_number()) throw std::invalid_argument("expects [min, max]");
           c.masking.ratio_min = *(*a)[0].value<double>();
           c.masking.ratio_max = *(*a)[1].value<double>();
         }}},
        {"separate_head", flag(&SslConfig::ibot_separate_head)},
        {"head_n_prototypes", head_number(&SslConfig::ibot_head, &DinoHeadConfig::prototypes)},
        {"head_hidden_dim", head_number(&SslConfig::ibot_head, &DinoHeadConfig::hidden)},
        {"head_bottleneck_dim", head_number(&SslConfig::ibot_head, &DinoHeadConfig::bottleneck)},
        {"head_nlayers", head_number(&SslConfig::ibot_head, &DinoHeadConfig::layers)}}},
      {"train",
       {{"batch_size", number(&SslConfig::batch_size)},
        {"centering", text(&SslConfig::centering)},
        {"sinkhorn_iterations", number(&SslConfig::sinkhorn_iterations)},
        {"student_temp", number(&SslConfig::student_temp)},
        {"center_momentum", number(&SslConfig::center_momentum)},
        {"epoch_length", number(&SslConfig::epoch_length)},
        {"seed", number(&SslConfig::seed)}}},
      {"teacher",
       {{"momentum_teacher", number(&SslConfig::momentum_teacher)},
        {"final_momentum_teacher", number(&SslConfig::final_momentum_teacher)},
        {"warmup_teacher_temp", number(&SslConfig::warmup_teacher_temp)},
        {"teacher_temp", number(&SslConfig::teacher_temp)},
        {"warmup_teacher_temp_epochs", number(&SslConfig::warmup_teacher_temp_epochs)}}},
      {"optim",
       {{"epochs", number(&SslConfig::epochs)},
        {"base_lr", number(&SslConfig::base_lr)},
        {"min_lr", number(&SslConfig::min_lr)},
        {"warmup_epochs", number(&SslConfig::warmup_epochs)},
        {"weight_decay", number(&SslConfig::weight_decay)},
        {"weight_decay_end", number(&SslConfig::weight_decay_end)},
        {"clip_grad", number(&SslConfig::clip_grad)},
        {"freeze_last_layer_epochs", number(&SslConfig::freeze_last_layer_epochs)},
        {"scaling_rule", text(&SslConfig::scaling_rule)},
        {"patch_embed_lr_mult", number(&SslConfig::patch_embed_lr_mult)},
        {"layerwise_decay", number(&SslConfig::layerwise_decay)},
        {"adamw_beta1", number(&SslConfig::adamw_beta1)},
        {"adamw_beta2", number(&SslConfig::adamw_beta2)}}},
      {"compute",
       {{"device", text(&SslConfig::device)},
        {"precision", text(&SslConfig::precision)},
        {"threads", number(&SslConfig::threads)}}},
  };
  return sections;
}

std::string names_of(const std::map<std::string, Key>& keys) {
  std::string out;
  for (const auto& [name, unused] : keys) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

double SslConfig::lr() const {
  if (scaling_rule == "sqrt_wrt_1024") return base_lr * std::sqrt(static_cast<double>(batch_size) / 1024.0);
  if (scaling_rule == "none") return base_lr;
  throw std::invalid_argument("unknown lr scaling rule '" + scaling_rule + "' (sqrt_wrt_1024 or none)");
}

std::int64_t SslConfig::total_iterations() const { return static_cast<std::int64_t>(epochs * static_cast<double>(epoch_length)); }

std::vector<RecipeKey> ssl_recipe_keys() {
  std::vector<RecipeKey> keys;
  for (const auto& [section, entries] : schema())
    for (const auto& [name, key] : entries) keys.push_back({section, name, key.type});
  return keys;
}

SslConfig parse_ssl_config(const toml::table& table, const std::string& source) {
  SslConfig config;
  for (const auto& [section_key, section_node] : table) {
    const std::string section(section_key.str());
    const auto found = schema().find(section);
    if (found == schema().end()) {
      std::string sections;
      for (const auto& [name, unused] : schema()) sections += (sections.empty() ? "" : ", ") + name;
      throw std::invalid_argument(where(source, section_key.source()) + ": unknown section '" + section + "' (sections: " + sections + ")");
    }
    const auto* entries = section_node.as_table();
    if (!entries) throw std::invalid_argument(where(source, section_key.source()) + ": '" + section + "' must be a table");
    for (const auto& [key, node] : *entries) {
      const std::string name(key.str());
      const auto reader = found->second.find(name);
      if (reader == found->second.end())
        throw std::invalid_argument(where(source, key.source()) + ": unknown key '" + name + "' in [" + section + "] (keys: " + names_of(found->second) + ")");
      try {
        reader->second.read(config, node);
      } catch (const std::invalid_argument& error) {
        throw std::invalid_argument(where(source, node.source()) + ": [" + section + "] " + name + " " + error.what());
      }
    }
  }
  validate_ssl_config(config);
  return config;
}

SslConfig read_ssl_config(const std::filesystem::path& file) {
  try {
    const toml::table table = toml::parse_file(file.string());
    return parse_ssl_config(table, file.string());
  } catch (const toml::parse_error& error) {
    throw std::invalid_argument(where(file.string(), error.source()) + ": " + std::string(error.description()));
  }
}

void validate_ssl_config(const SslConfig& c) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("finetune config: " + what); };
  if (c.weights.empty() == !c.synthetic_weights) fail("[model] needs 'weights' or 'synthetic_weights = true' (exactly one)");
  if (c.sinkhorn_iterations < 1) fail("[train] sinkhorn_iterations must be at least 1");
  if (c.centering != "sinkhorn_knopp" && c.centering != "centering") fail("[train] centering must be 'sinkhorn_knopp' or 'centering'");
  if (c.precision != "fp32" && c.precision != "bf16" && c.precision != "fp16") fail("[compute] precision must be fp32, bf16 or fp16");
  if (c.precision == "fp16" && c.device == "cpu") fail("fp16 training needs a GPU (use bf16 or fp32 on the CPU)");
  if (c.batch_size < 2) fail("[train] batch_size must be at least 2 (KoLeo needs a nearest neighbour)");
  if (!(c.drop_path_rate >= 0 && c.drop_path_rate < 1)) fail("[model] drop_path_rate must lie in [0, 1)");
  if (c.global_size < 1 || c.local_size < 1) fail("[crops] sizes must be positive");
  if (c.epoch_length < 1 || c.total_iterations() < 1) fail("[optim] epochs x [train] epoch_length must be at least one iteration");
  if (c.warmup_epochs > c.epochs) fail("[optim] warmup_epochs exceeds epochs");
  if (!(c.student_temp > 0 && c.teacher_temp > 0 && c.warmup_teacher_temp > 0)) fail("temperatures must be positive");
  if (c.masking.ratio_min < 0 || c.masking.ratio_min > c.masking.ratio_max || c.masking.ratio_max > 1) fail("[ibot] mask_ratio_min_max must satisfy 0 <= min <= max <= 1");
  (void)c.lr();
}

std::string ssl_config_toml(const SslConfig& c) {
  std::ostringstream o;
  o.precision(17);
  const auto head = [&](const DinoHeadConfig& h) {
    o << "head_n_prototypes = " << h.prototypes << "\nhead_hidden_dim = " << h.hidden << "\nhead_bottleneck_dim = " << h.bottleneck
      << "\nhead_nlayers = " << h.layers << "\n";
  };
  const auto b = [](bool v) { return v ? "true" : "false"; };
  o << "[model]\nbackbone = " << toml::value<std::string>(c.backbone) << "\n";
  if (!c.weights.empty()) o << "weights = " << toml::value<std::string>(c.weights) << "\n";
  o << "synthetic_weights = " << b(c.synthetic_weights) << "\nposition_resize = " << toml::value<std::string>(c.position_resize)
    << "\ndrop_path_rate = " << c.drop_path_rate << "\ndrop_path_uniform = " << b(c.drop_path_uniform) << "\n\n[crops]\nglobal_size = "
    << c.global_size << "\nlocal_size = " << c.local_size << "\nlocal_number = " << c.local_number << "\n\n[dino]\nloss_weight = "
    << c.dino_loss_weight << "\n";
  head(c.dino_head);
  o << "koleo_loss_weight = " << c.koleo_loss_weight << "\nkoleo_eps = " << c.koleo_eps << "\nkoleo_distance_eps = " << c.koleo_distance_eps << "\n\n[ibot]\nloss_weight = " << c.ibot_loss_weight
    << "\nmask_sample_probability = " << c.masking.probability << "\nmask_ratio_min_max = [" << c.masking.ratio_min << ", "
    << c.masking.ratio_max << "]\nseparate_head = " << b(c.ibot_separate_head) << "\n";
  head(c.ibot_head);
  o << "\n[train]\nbatch_size = " << c.batch_size << "\ncentering = " << toml::value<std::string>(c.centering) << "\nsinkhorn_iterations = "
    << c.sinkhorn_iterations << "\nstudent_temp = " << c.student_temp << "\ncenter_momentum = " << c.center_momentum
    << "\nepoch_length = " << c.epoch_length << "\nseed = " << c.seed << "\n\n[teacher]\nmomentum_teacher = " << c.momentum_teacher
    << "\nfinal_momentum_teacher = " << c.final_momentum_teacher << "\nwarmup_teacher_temp = " << c.warmup_teacher_temp
    << "\nteacher_temp = " << c.teacher_temp << "\nwarmup_teacher_temp_epochs = " << c.warmup_teacher_temp_epochs
    << "\n\n[optim]\nepochs = " << c.epochs << "\nbase_lr = " << c.base_lr << "\nmin_lr = " << c.min_lr << "\nwarmup_epochs = "
    << c.warmup_epochs << "\nweight_decay = " << c.weight_decay << "\nweight_decay_end = " << c.weight_decay_end << "\nclip_grad = "
    << c.clip_grad << "\nfreeze_last_layer_epochs = " << c.freeze_last_layer_epochs << "\nscaling_rule = "
    << toml::value<std::string>(c.scaling_rule) << "\npatch_embed_lr_mult = " << c.patch_embed_lr_mult << "\nlayerwise_decay = "
    << c.layerwise_decay << "\nadamw_beta1 = " << c.adamw_beta1 << "\nadamw_beta2 = " << c.adamw_beta2 << "\n\n[compute]\ndevice = "
    << toml::value<std::string>(c.device) << "\nprecision = " << toml::value<std::string>(c.precision) << "\nthreads = " << c.threads << "\n";
  return o.str();
}

}  // namespace histoflow::finetune
