#include "ssl_trainer.hpp"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "data_parallel.hpp"
#include "histoflow/torch_encoders/convert.hpp"
#include "histoflow/torch_encoders/weights.hpp"

namespace histoflow::finetune {
namespace {

constexpr const char* kCheckpointFormat = "histoflow-ssl-checkpoint-v1";

std::int64_t iterations_of(double epochs, std::int64_t epoch_length) { return static_cast<std::int64_t>(epochs * static_cast<double>(epoch_length)); }

torch::Tensor imagenet_normalised(const torch::Tensor& uint8_nhwc) {
  auto x = uint8_nhwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
  const auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  return ((x - mean) / std).contiguous();
}

// The settings that may change between a run and its resumption: where and how fast it computes.
SslConfig without_compute(SslConfig config) {
  config.threads = 0;
  config.device = "cpu";
  return config;
}

}  // namespace

SyntheticCropSource::SyntheticCropSource(const SslConfig& config, std::uint64_t seed) : config_(config), seed_(seed) {}

SslBatch SyntheticCropSource::next() {
  const std::string base = "synthetic:" + std::to_string(seed_) + ":" + std::to_string(index_++);
  const std::int64_t b = config_.batch_size;
  SslBatch batch;
  batch.global_crops = imagenet_normalised(torch_encoders::deterministic_bytes(base + ":global", {2 * b, config_.global_size, config_.global_size, 3}));
  batch.local_crops = imagenet_normalised(torch_encoders::deterministic_bytes(base + ":local", {config_.local_number * b, config_.local_size, config_.local_size, 3}));
  return batch;
}

void SyntheticCropSource::seek(const std::string& position) { index_ = std::stoll(position); }

SslSchedules::SslSchedules(const SslConfig& c)
    : lr_(c.lr(), c.min_lr, c.total_iterations(), iterations_of(c.warmup_epochs, c.epoch_length), 0.0),
      wd_(c.weight_decay, c.weight_decay_end, c.total_iterations()),
      momentum_(c.momentum_teacher, c.final_momentum_teacher, c.total_iterations()),
      teacher_temp_(c.teacher_temp, c.teacher_temp, iterations_of(c.warmup_teacher_temp_epochs, c.epoch_length),
                    iterations_of(c.warmup_teacher_temp_epochs, c.epoch_length), c.warmup_teacher_temp),
      last_layer_lr_(lr_) {
  last_layer_lr_.zero_first(iterations_of(c.freeze_last_layer_epochs, c.epoch_length));
}

ScheduleValues SslSchedules::at(std::int64_t it) const {
  return {lr_[it], wd_[it], momentum_[it], teacher_temp_[it], last_layer_lr_[it]};
}

SslTrainer::SslTrainer(const SslConfig& config, std::unique_ptr<SslBatchSource> data, std::unique_ptr<SslModel> model,
                       Collectives* collectives)
    : config_(config),
      data_(std::move(data)),
      model_(model ? std::move(model) : std::make_unique<SslModel>(config)),
      schedules_(config),
      masking_(model_->grid(), config.masking, config.seed ^ 0x6d61736bULL),
      device_(torch_encoders::parse_device(config.device)),
      collectives_(collectives && collectives->world() > 1 ? collectives : nullptr) {
  validate_ssl_config(config);
  if (collectives_) {
    if (config.batch_size % collectives_->world() != 0)
      throw std::invalid_argument("batch_size " + std::to_string(config.batch_size) + " does not divide among " +
                                  std::to_string(collectives_->world()) + " processes");
    model_->set_collectives(collectives_);
  }
  if (config.threads > 0) torch::set_num_threads(config.threads);
  model_->to(device_);
  std::vector<ParameterGroup> groups;
  for (auto& [name, module] : model_->student().modules()) {
    auto part = parameter_groups(*module, name, name == "backbone" ? model_->student().vit->depth() : 0, config.layerwise_decay, config.patch_embed_lr_mult);
    groups.insert(groups.end(), part.begin(), part.end());
  }
  optimizer_ = std::make_unique<AdamW>(std::move(groups), AdamWOptions{config.adamw_beta1, config.adamw_beta2, 1e-8});
}

StepReport SslTrainer::step() {
  const auto fetch = std::chrono::steady_clock::now();
  StepReport report;
  report.iteration = iteration_;
  report.schedule = schedules_.at(iteration_);
  auto batch = data_->next();
  const auto start = std::chrono::steady_clock::now();
  report.data_seconds = std::chrono::duration<double>(start - fetch).count();
  batch.global_crops = batch.global_crops.to(device_);
  batch.local_crops = batch.local_crops.to(device_);
  if (!batch.masks.masks.defined()) batch.masks = masking_.next(batch.global_crops.size(0));  // the global batch's, on every process
  if (collectives_) batch = rank_share(batch, collectives_->rank(), collectives_->world());
  batch.masks.masks = batch.masks.masks.to(device_);
  batch.masks.indices = batch.masks.indices.to(device_);
  batch.masks.weights = batch.masks.weights.to(device_);

  optimizer_->zero_grad();
  const bool fp16 = config_.precision == "fp16";
  const auto terms = model_->forward_backward(batch, report.schedule.teacher_temp, fp16 ? scaler_.scale() : 1.0);
  report.dino_local = terms.dino_local.item<double>();
  report.dino_global = terms.dino_global.item<double>();
  report.koleo = terms.koleo.item<double>();
  report.ibot = terms.ibot.item<double>();
  report.total = terms.total.item<double>();
  if (collectives_) {  // every process stops on a non-finite loss of any, rather than wait for the others' gradients
    auto total = torch::full({1}, report.total, torch::kDouble);
    collectives_->sum(total);
    if (!std::isfinite(total.item<double>())) report.total = total.item<double>();
  }
  if (!std::isfinite(report.total)) {
    std::string last = last_checkpoint_.empty() ? "none written yet" : "'" + last_checkpoint_.string() + "'";
    throw NonFiniteLoss("the loss is not finite at iteration " + std::to_string(iteration_) + " (dino local " + std::to_string(report.dino_local) +
                        ", dino global " + std::to_string(report.dino_global) + ", koleo " + std::to_string(report.koleo) + ", ibot " +
                        std::to_string(report.ibot) + "); training stopped before the optimiser step, nothing was overwritten; last good checkpoint: " + last);
  }
  std::vector<torch::Tensor> parameters;
  for (const auto& group : optimizer_->groups()) parameters.push_back(group.parameter);
  // Averaged before unscaling and clipping: every process then sees the same gradients and takes the same step.
  if (collectives_) average_gradients(parameters, *collectives_);
  bool take_step = true;  // false: an fp16 gradient overflowed, the scaler skips the step
  if (fp16) take_step = scaler_.unscale(parameters);
  if (take_step) {
    if (config_.clip_grad > 0)
      for (auto& [name, module] : model_->student().modules()) torch::nn::utils::clip_grad_norm_(module->parameters(), config_.clip_grad);
    optimizer_->step(report.schedule.lr, report.schedule.weight_decay, report.schedule.last_layer_lr);
  }
  if (fp16) scaler_.update(take_step);
  model_->update_teacher(report.schedule.momentum);
  ++iteration_;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  history_.push_back(report);
  return report;
}

void SslTrainer::save_checkpoint(const std::filesystem::path& file) {
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [name, p] : model_->student().named_parameters()) tensors["student." + name] = p.detach();
  for (auto& [name, p] : model_->teacher().named_parameters()) tensors["teacher." + name] = p.detach();
  for (auto& [name, t] : optimizer_->state()) tensors["optim." + name] = t;
  nlohmann::json state;
  for (auto [key, centre] : {std::pair{std::string("dino"), &model_->dino_centre()}, std::pair{std::string("ibot"), &model_->ibot_centre()}}) {
    tensors["centre." + key] = centre->centre();
    if (centre->pending_sum().defined()) tensors["centre." + key + ".pending"] = centre->pending_sum();
    state["centre_" + key + "_pending_rows"] = centre->pending_rows();
  }
  tensors["rng.drop_path"] = model_->drop_path_generator().get_state();
  state["iteration"] = iteration_;
  state.update(scaler_.state());
  state["masking_rng"] = masking_.state();
  state["data_position"] = data_->position();
  nlohmann::json history = nlohmann::json::array();
  for (const auto& r : history_) history.push_back(report_json(r));
  state["history"] = history;
  std::map<std::string, std::string> metadata{{"format", kCheckpointFormat},
                                              {"state", state.dump()},
                                              {"config", ssl_config_toml(config_)},
                                              {"source_sha256", model_->source_sha256()}};
  torch_encoders::write_tensor_file(file, tensors, metadata);
  last_checkpoint_ = file;
}

void SslTrainer::resume(const std::filesystem::path& file) {
  const auto loaded = torch_encoders::read_weights(file);
  const auto format = loaded.metadata.find("format");
  if (format == loaded.metadata.end() || format->second != kCheckpointFormat)
    throw std::runtime_error("'" + file.string() + "' is not a histoflow training checkpoint (" + kCheckpointFormat + ")");
  const auto written = loaded.metadata.at("config");
  if (ssl_config_toml(without_compute(config_)) != ssl_config_toml(without_compute(parse_ssl_config(toml::parse(written), file.string()))))
    throw std::runtime_error("'" + file.string() + "' was written with another recipe; resume with the config it records, or start a new run");
  const auto take = [&](const std::string& key) -> const torch::Tensor& {
    const auto it = loaded.tensors.find(key);
    if (it == loaded.tensors.end()) throw std::runtime_error("'" + file.string() + "' lacks '" + key + "'");
    return it->second;
  };
  torch::NoGradGuard no_grad;
  for (auto [prefix, network] : {std::pair{std::string("student."), &model_->student()}, std::pair{std::string("teacher."), &model_->teacher()}})
    for (auto& [name, p] : network->named_parameters()) {
      const auto& t = take(prefix + name);
      if (t.sizes() != p.sizes()) throw std::runtime_error("'" + file.string() + "': " + prefix + name + " has another shape than the model");
      p.copy_(t);
    }
  std::map<std::string, torch::Tensor> optim;
  for (const auto& [key, t] : loaded.tensors)
    if (key.rfind("optim.", 0) == 0) optim[key.substr(6)] = t;
  optimizer_->restore(optim);
  const auto state = nlohmann::json::parse(loaded.metadata.at("state"));
  for (auto [key, centre] : {std::pair{std::string("dino"), &model_->dino_centre()}, std::pair{std::string("ibot"), &model_->ibot_centre()}}) {
    const auto pending = loaded.tensors.find("centre." + key + ".pending");
    centre->restore(take("centre." + key).to(device_).clone(), pending == loaded.tensors.end() ? torch::Tensor() : pending->second.to(device_).clone(),
                    state.at("centre_" + key + "_pending_rows").get<std::int64_t>());
  }
  model_->drop_path_generator().set_state(take("rng.drop_path"));
  iteration_ = state.at("iteration").get<std::int64_t>();
  scaler_.restore(state);
  masking_.restore(state.at("masking_rng").get<std::string>());
  data_->seek(state.at("data_position").get<std::string>());
  history_.clear();
  for (const auto& r : state.at("history")) history_.push_back(report_from_json(r));
  last_checkpoint_ = file;
}

nlohmann::json report_json(const StepReport& r) {
  return {{"iteration", r.iteration}, {"lr", r.schedule.lr}, {"wd", r.schedule.weight_decay}, {"momentum", r.schedule.momentum},
          {"teacher_temp", r.schedule.teacher_temp}, {"last_layer_lr", r.schedule.last_layer_lr}, {"dino_local", r.dino_local},
          {"dino_global", r.dino_global}, {"koleo", r.koleo}, {"ibot", r.ibot}, {"total", r.total}, {"seconds", r.seconds}, {"data_seconds", r.data_seconds}};
}

StepReport report_from_json(const nlohmann::json& j) {
  StepReport r;
  r.iteration = j.at("iteration").get<std::int64_t>();
  r.schedule = {j.at("lr").get<double>(), j.at("wd").get<double>(), j.at("momentum").get<double>(), j.at("teacher_temp").get<double>(),
                j.at("last_layer_lr").get<double>()};
  r.dino_local = j.at("dino_local").get<double>();
  r.dino_global = j.at("dino_global").get<double>();
  r.koleo = j.at("koleo").get<double>();
  r.ibot = j.at("ibot").get<double>();
  r.total = j.at("total").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.data_seconds = j.value("data_seconds", 0.0);
  return r;
}

}  // namespace histoflow::finetune
