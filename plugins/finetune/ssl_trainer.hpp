#pragma once
// DINOv2's training loop around the step (dinov2/train/train.py): schedules applied per iteration, AdamW with the
// official parameter groups, gradient clipping per student module, the teacher's EMA, and a checkpoint that
// holds everything a run needs to continue exactly (weights, optimiser, centres, schedules' position, every
// random state and the data position).
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <memory>
#include <stdexcept>
#include <string>

#include "collectives.hpp"
#include "cosine_schedule.hpp"
#include "grad_scaler.hpp"
#include "param_groups.hpp"
#include "ssl_model.hpp"

namespace histoflow::finetune {

// Where a training run's crops come from; its position is part of a checkpoint.
class SslBatchSource {
 public:
  virtual ~SslBatchSource() = default;
  virtual SslBatch next() = 0;  // crops; the trainer draws masks unless the source gives them (a replay)
  virtual std::string position() const = 0;
  virtual void seek(const std::string& position) = 0;
};

// Deterministic crops (histoflow-init-v1 values per batch index): tests and benchmarks.
class SyntheticCropSource final : public SslBatchSource {
 public:
  SyntheticCropSource(const SslConfig& config, std::uint64_t seed);
  SslBatch next() override;
  std::string position() const override { return std::to_string(index_); }
  void seek(const std::string& position) override;

 private:
  SslConfig config_;
  std::uint64_t seed_;
  std::int64_t index_ = 0;
};

// The schedules' values at one iteration.
struct ScheduleValues {
  double lr, weight_decay, momentum, teacher_temp, last_layer_lr;
};

class SslSchedules {
 public:
  explicit SslSchedules(const SslConfig& config);
  ScheduleValues at(std::int64_t iteration) const;

 private:
  CosineSchedule lr_, wd_, momentum_, teacher_temp_, last_layer_lr_;
};

struct StepReport {
  std::int64_t iteration = 0;  // the iteration just done
  ScheduleValues schedule{};
  double dino_local = 0, dino_global = 0, koleo = 0, ibot = 0, total = 0;
  double seconds = 0;       // the step itself: masks, forward, backward, optimiser, EMA
  double data_seconds = 0;  // waiting for the batch source (not in `seconds`)
};

// A step as JSON (one line of a run's loss log) and back.
nlohmann::json report_json(const StepReport& report);
StepReport report_from_json(const nlohmann::json& json);

// A loss that is not finite: the run stops before the optimiser step, nothing is written.
class NonFiniteLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SslTrainer {
 public:
  // `collectives`: the processes of a data-parallel run (not owned; null: this process alone). The data source
  // then gives every process the same global batch; each trains on its share (rank_share) and the gradients are
  // averaged, so W processes take the step one process takes with the whole batch.
  SslTrainer(const SslConfig& config, std::unique_ptr<SslBatchSource> data, std::unique_ptr<SslModel> model = nullptr,
             Collectives* collectives = nullptr);
  StepReport step();
  std::int64_t iteration() const { return iteration_; }
  // Replays a single step at another schedule position (parity tests); training runs never call it.
  void set_iteration(std::int64_t iteration) { iteration_ = iteration; }
  SslModel& model() { return *model_; }
  AdamW& optimizer() { return *optimizer_; }
  const SslConfig& config() const { return config_; }
  // The last checkpoint written or resumed from (named in errors); empty when none.
  const std::filesystem::path& last_checkpoint() const { return last_checkpoint_; }
  // Every step since iteration 0 (restored with a checkpoint): the loss curve.
  const std::vector<StepReport>& history() const { return history_; }

  // Writes the full state atomically (safetensors with the state in its metadata).
  void save_checkpoint(const std::filesystem::path& file);
  // Restores a state written by save_checkpoint with the same config (compute settings may differ).
  void resume(const std::filesystem::path& file);

 private:
  SslConfig config_;
  std::unique_ptr<SslBatchSource> data_;
  std::unique_ptr<SslModel> model_;
  std::unique_ptr<AdamW> optimizer_;
  SslSchedules schedules_;
  BlockMasking masking_;
  torch::Device device_;
  std::int64_t iteration_ = 0;
  GradScaler scaler_;  // fp16 only
  std::filesystem::path last_checkpoint_;
  std::vector<StepReport> history_;
  Collectives* collectives_ = nullptr;
};

}  // namespace histoflow::finetune
