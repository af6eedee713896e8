// The dinov2_finetune stage: DINOv2 self-supervised finetuning (ssl_trainer.hpp) on the crops that multi_crop
// makes from a stream of tiles. Every recipe value is a parameter (defaults: the study's config); the run trains
// for `iterations` steps or `max_time`, whichever ends first, checkpoints every `checkpoint_every` steps, and a
// rerun of the same command continues from the last checkpoint exactly: the samples trained on before it are
// restored (skipped upstream), the rest arrive in stream order.
#include <malloc.h>

#include <climits>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <toml++/toml.h>

#include "finetune_stages.hpp"
#include "histoflow/atomic_file.hpp"
#include "histoflow/augment/crops_kind.hpp"
#include "evaluation_curve.hpp"
#include "histoflow/stage.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "collectives.hpp"
#include "ssl_trainer.hpp"
#include "teacher_export.hpp"
#include "training_evaluation.hpp"

namespace histoflow::finetune {

double parse_duration(const std::string& text) {
  if (text.empty()) return 0;
  static const std::regex pattern(R"(^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, pattern) || (!m[1].matched && !m[2].matched && !m[3].matched))
    throw std::invalid_argument("max_time '" + text + "' is not a duration such as \"2h\", \"90m\", \"1h30m\" or \"3600s\"");
  double seconds = 0;
  if (m[1].matched) seconds += 3600 * std::stod(m[1]);
  if (m[2].matched) seconds += 60 * std::stod(m[2]);
  if (m[3].matched) seconds += std::stod(m[3]);
  return seconds;
}

namespace {

// A recipe key as a stage parameter: the key itself, or "<section>_<key>" where two sections share the key
// (dino_loss_weight, ibot_head_n_prototypes, ...).
struct RecipeParam {
  std::string name;
  RecipeKey key;
};

const std::vector<RecipeParam>& recipe_params() {
  static const std::vector<RecipeParam> params = [] {
    const auto keys = ssl_recipe_keys();
    std::map<std::string, int> count;
    for (const auto& k : keys) ++count[k.key];
    std::vector<RecipeParam> out;
    for (const auto& k : keys) out.push_back({count[k.key] > 1 ? k.section + "_" + k.key : k.key, k});
    return out;
  }();
  return params;
}

const toml::table& default_recipe() {
  static const toml::table table = toml::parse(ssl_config_toml(SslConfig{}));
  return table;
}

ParamSpec spec_of(const RecipeParam& p) {
  const std::string doc = "recipe [" + p.key.section + "] " + p.key.key + " (docs/finetune.md)";
  const toml::node* node = default_recipe().at_path(p.key.section + "." + p.key.key).node();
  if (!node) return param_path(p.name, doc);  // [model] weights: no default
  ParamSpec spec;
  switch (p.key.type) {
    case RecipeKeyType::Int: spec = param_int(p.name, *node->value<std::int64_t>(), doc, 0); break;
    case RecipeKeyType::Float: spec = param_float(p.name, *node->value<double>(), doc); break;
    case RecipeKeyType::Bool: spec = param_bool(p.name, *node->value<bool>(), doc); break;
    case RecipeKeyType::String: spec = param_string(p.name, *node->value<std::string>(), doc); break;
    case RecipeKeyType::FloatList: {
      std::vector<double> values;
      for (const auto& v : *node->as_array()) values.push_back(*v.value<double>());
      spec = param_float_list(p.name, values, doc);
      break;
    }
  }
  if (p.key.key == "threads" || p.key.key == "device") spec = not_affecting_output(spec);
  return spec;
}

// The recipe the parameters describe, read by the training core's own parser (its checks included).
SslConfig recipe_from(const Params& params, const std::string& stage_id) {
  toml::table table;
  for (const auto& p : recipe_params()) {
    if (!params.has(p.name)) continue;
    if (!table.contains(p.key.section)) table.insert(p.key.section, toml::table{});
    toml::table& section = *table[p.key.section].as_table();
    switch (p.key.type) {
      case RecipeKeyType::Int: section.insert(p.key.key, params.get_int(p.name)); break;
      case RecipeKeyType::Float: section.insert(p.key.key, params.get_float(p.name)); break;
      case RecipeKeyType::Bool: section.insert(p.key.key, params.get_bool(p.name)); break;
      case RecipeKeyType::String: section.insert(p.key.key, params.get_string(p.name)); break;
      case RecipeKeyType::FloatList: {
        toml::array values;
        for (const double v : params.get_float_list(p.name)) values.push_back(v);
        section.insert(p.key.key, std::move(values));
        break;
      }
    }
  }
  return parse_ssl_config(table, "stage '" + stage_id + "'");
}

// The evaluation the parameters ask for; nullopt without eval_train.
std::optional<EvaluationSettings> evaluation_settings(const Params& params, const SslConfig& config, std::uint64_t seed) {
  if (!params.has("eval_train")) return std::nullopt;
  EvaluationSettings settings;
  settings.train = params.get_string("eval_train");
  settings.test = params.get_string("eval_test");
  settings.image_size = params.get_int("eval_size") > 0 ? static_cast<int>(params.get_int("eval_size")) : config.global_size;
  settings.max_per_class = params.get_int("eval_max_per_class");
  settings.k = params.get_int("eval_k");
  settings.temperature = params.get_float("eval_temperature");
  settings.linear_probe = params.get_bool("eval_linear_probe");
  settings.seed = seed;
  return settings;
}

// The trainer's batch source, fed by the stage one batch at a time. Its position is the stream position after
// the last sample given, which a checkpoint keeps: a rerun restores every sample before it.
class StagedBatches final : public SslBatchSource {
 public:
  void put(SslBatch batch, std::uint64_t next_sequence) {
    batch_ = std::move(batch);
    next_sequence_ = next_sequence;
  }
  SslBatch next() override { return std::move(batch_); }
  std::string position() const override { return std::to_string(next_sequence_); }
  void seek(const std::string& position) override { next_sequence_ = std::stoull(position); }
  std::uint64_t next_sequence() const { return next_sequence_; }

 private:
  SslBatch batch_;
  std::uint64_t next_sequence_ = 0;
};

class Dinov2Finetune final : public Stage {
 public:
  explicit Dinov2Finetune(const StageContext& context)
      : context_(context),
        config_(recipe_from(context.params, context.stage_id)),
        iterations_(context.params.get_int("iterations") > 0 ? context.params.get_int("iterations") : config_.total_iterations()),
        max_seconds_(parse_duration(context.params.get_string("max_time"))),
        checkpoint_every_(context.params.get_int("checkpoint_every")),
        eval_every_(context.params.get_int("eval_every")),
        folder_(context.experiment.output_dir / context.stage_id),
        layout_{2, config_.global_size, config_.local_number, config_.local_size} {
    // Training allocates and frees blocks of hundreds of MB every step; glibc would hand them back to the system
    // and fault them in again each time (half a step in system time). Keep freed memory in the heap, and keep
    // every thread on the main heap: a thread of a secondary arena gets blocks over 64 MB by mmap whatever the
    // settings (ViT-S, batch 8, bf16 on 2 cores: 8.3 s a step on secondary arenas, 4.0 s on the main one).
    // Stages are created before the run starts its threads, so they all take the main arena.
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
  }

  void open() override {
    std::filesystem::create_directories(folder_);
    // Data-parallel under `srun -n W flowrun run ...`: every process reads the same stream of crops, trains on its
    // share of each batch, and rank 0 alone writes (checkpoints, the export, the evaluations).
    try {
      if (const auto rendezvous = rendezvous_from(process_environment, slurm_rendezvous_store(process_environment, folder_))) {
        collectives_ = join_process_group(*rendezvous);
        const std::string line = "stage '" + context_.stage_id + "': data-parallel training, rank " + std::to_string(rendezvous->rank) +
                                 " of " + std::to_string(rendezvous->world) + " (met at " + rendezvous->store + ")\n";
        std::cerr << line;
      }
    } catch (const std::exception& e) {
      throw FatalError("stage '" + context_.stage_id + "': " + e.what());
    }
    lead_ = !collectives_ || collectives_->rank() == 0;
    if (const auto settings = lead_ ? evaluation_settings(context_.params, config_, context_.experiment.seed) : std::nullopt) {
      // Decoded before training starts, so that a bad evaluation set stops the run before any step.
      try {
        evaluation_ = std::make_unique<TrainingEvaluation>(*settings);
      } catch (const std::exception& e) {
        throw FatalError("stage '" + context_.stage_id + "': " + e.what());
      }
      curve_ = std::make_unique<EvaluationCurve>(folder_, settings->describe());
    }
    auto source = std::make_unique<StagedBatches>();
    batches_ = source.get();
    trainer_ = std::make_unique<SslTrainer>(config_, std::move(source), nullptr, collectives_.get());
    if (std::filesystem::exists(checkpoint())) trainer_->resume(checkpoint());
    trained_before_ = batches_->next_sequence();
    for (const auto& r : trainer_->history()) seconds_trained_ += r.seconds + r.data_seconds;  // earlier runs' steps
    if (curve_) curve_->restore(trainer_->iteration());  // points of other evaluation settings stay in the file, unplotted
    if (budget_spent()) {
      if (exported_at_this_iteration() && !evaluation_due()) {  // a finished run: nothing to write again
        finished_ = true;
        context_.stream->end_sources("stage '" + context_.stage_id + "' ended training: its budget was spent in an earlier run");
      } else {
        finish("its budget was spent in an earlier run");
      }
    } else if (evaluation_due()) {
      evaluate_teacher();  // at iteration 0, or the evaluation a kill interrupted
    }
  }

  // Samples before the checkpoint's position were trained on: a rerun skips them everywhere upstream.
  bool restore(const Packet& item, Emitter&) override { return item.provenance.sequence < trained_before_; }

  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    if (finished_) return;  // crops already on their way when the budget ran out
    const augment::CropsLayout layout = augment::crops_layout_of(*input);
    if (layout != layout_)
      throw FatalError("crops of " + std::to_string(layout.global_number) + "x" + std::to_string(layout.global_size) + " + " +
                       std::to_string(layout.local_number) + "x" + std::to_string(layout.local_size) + " px reach a recipe of 2x" +
                       std::to_string(config_.global_size) + " + " + std::to_string(config_.local_number) + "x" +
                       std::to_string(config_.local_size) + ": give multi_crop the recipe's global_size, local_size and local_number");
    pending_.push_back(input);
    if (static_cast<int>(pending_.size()) == config_.batch_size) train_on_pending();
  }

  void flush(Emitter&) override {
    if (!finished_) finish("its input ended");
  }

  std::vector<StageResult> results() const override {
    if (!lead_) return {};  // rank 0 wrote them
    std::vector<StageResult> out{{"finetuned teacher (torch_encoder weights)", folder_ / "export" / "teacher_backbone.safetensors"},
                                 {"training checkpoint", checkpoint()},
                                 {"loss curve", folder_ / "losses.jsonl"}};
    if (curve_) {
      out.push_back({"balanced accuracy over training (k-NN, linear probe)", curve_->csv()});
      out.push_back({"its plot (left: against iteration; right: against training hours)", curve_->png()});
      out.push_back({"best teacher by k-NN balanced accuracy (torch_encoder weights)", folder_ / "best" / "teacher_backbone.safetensors"});
    }
    return out;
  }

 private:
  std::filesystem::path checkpoint() const { return folder_ / "checkpoint.safetensors"; }

  bool budget_spent() const {
    return trainer_->iteration() >= iterations_ || (max_seconds_ > 0 && seconds_trained_ >= max_seconds_);
  }

  // One step on the pending samples: crops normalised into the trainer's crop-major batch.
  void train_on_pending() {
    const std::int64_t b = config_.batch_size, g = config_.global_size, l = config_.local_size, n_local = config_.local_number;
    SslBatch batch;
    batch.global_crops = torch::empty({2 * b, 3, g, g});
    batch.local_crops = torch::empty({n_local * b, 3, l, l});
    for (std::int64_t image = 0; image < b; ++image) {
      // process() checked each packet's layout against layout_.
      const std::uint8_t* bytes = pending_[static_cast<std::size_t>(image)]->tensor.span<std::uint8_t>().data();
      for (std::int64_t c = 0; c < 2; ++c)
        augment::normalise_crop(bytes + layout_.offset(c), g, batch.global_crops[c * b + image].data_ptr<float>());
      for (std::int64_t c = 0; c < n_local; ++c)
        augment::normalise_crop(bytes + layout_.offset(2 + c), l, batch.local_crops[c * b + image].data_ptr<float>());
    }
    batches_->put(std::move(batch), pending_.back()->provenance.sequence + 1);
    pending_.clear();
    StepReport report;
    try {
      report = trainer_->step();
      double seconds = report.seconds + report.data_seconds;
      if (collectives_) {  // rank 0's clock for all: every process must end on the same step (max_time)
        auto lead_seconds = torch::full({1}, lead_ ? seconds : 0.0, torch::kDouble);
        collectives_->sum(lead_seconds);
        seconds = lead_seconds.item<double>();
      }
      seconds_trained_ += seconds;
    } catch (const NonFiniteLoss& e) {
      throw FatalError(e.what());
    } catch (const std::exception& e) {
      if (collectives_)  // a rank that skipped a step would pair its sums with the others' next step
        throw FatalError("rank " + std::to_string(collectives_->rank()) + " of " + std::to_string(collectives_->world()) + ": " + e.what());
      throw;
    }
    const double rate = report.seconds > 0 ? 1.0 / report.seconds : 0;
    std::ostringstream what;
    what.precision(4);
    what << "iteration " << trainer_->iteration() << "/" << iterations_ << ", loss " << report.total << ", lr " << report.schedule.lr
         << ", " << rate << " it/s";
    const double by_iterations = static_cast<double>(trainer_->iteration()) / static_cast<double>(iterations_);
    context_.progress->report(what.str(), max_seconds_ > 0 ? std::max(by_iterations, seconds_trained_ / max_seconds_) : by_iterations);
    if (budget_spent()) {
      finish(trainer_->iteration() >= iterations_ ? "it trained " + std::to_string(iterations_) + " iterations"
                                                  : "it trained for max_time (" + context_.params.get_string("max_time") + ")");
    } else {
      const bool evaluate = evaluation_due();
      if (evaluate || (checkpoint_every_ > 0 && trainer_->iteration() % checkpoint_every_ == 0)) save();
      if (evaluate) evaluate_teacher();  // after the checkpoint: a kill during it redoes only the evaluation
    }
  }

  // At iteration 0, every eval_every steps and at the end, once per iteration.
  bool evaluation_due() const {
    if (!curve_ || curve_->has(trainer_->iteration())) return false;
    const std::int64_t i = trainer_->iteration();
    return i == 0 || (eval_every_ > 0 && i % eval_every_ == 0) || budget_spent();
  }

  // The teacher on the evaluation sets; the best so far (k-NN) exported to best/. Training waits meanwhile; the
  // time is not training time (max_time), but the curve's elapsed time includes it.
  void evaluate_teacher() {
    const std::int64_t iteration = trainer_->iteration();
    context_.progress->report("evaluating the teacher at iteration " + std::to_string(iteration) + " (" +
                                  std::to_string(evaluation_->train_images()) + " + " + std::to_string(evaluation_->test_images()) + " images)",
                              static_cast<double>(iteration) / static_cast<double>(iterations_));
    const EvaluationScore score =
        evaluation_->evaluate(*trainer_->model().teacher().backbone, torch_encoders::parse_device(config_.device),
                              [this] { throw_if_cancelled(context_); });  // the checkpoint is saved: a rerun redoes only this
    EvaluationPoint point;
    point.iteration = iteration;
    point.training_seconds = seconds_trained_;
    point.elapsed_seconds = seconds_trained_ + curve_->evaluation_seconds();
    point.knn_balanced_accuracy = score.knn_balanced_accuracy;
    point.linear_balanced_accuracy = score.linear_balanced_accuracy;
    point.seconds = score.seconds;
    const EvaluationPoint* best = curve_->best();
    if (!best || score.knn_balanced_accuracy > best->knn_balanced_accuracy)
      export_teacher(*trainer_, folder_ / "best", lineage());  // before the point: a kill between them redoes both
    curve_->add(point);
    std::ostringstream line;
    line.precision(4);
    line << "stage '" << context_.stage_id << "': iteration " << iteration << ", k-NN balanced accuracy " << score.knn_balanced_accuracy;
    if (score.linear_balanced_accuracy >= 0) line << ", linear probe " << score.linear_balanced_accuracy;
    line << " (" << score.seconds << " s)";
    context_.progress->report(line.str(), static_cast<double>(iteration) / static_cast<double>(iterations_));
  }

  // The export's model card names the checkpoint's iteration (the export is the last thing a finished run writes).
  bool exported_at_this_iteration() const {
    std::ifstream in(folder_ / "export" / "model_card.json");
    if (!in) return false;
    try {
      return nlohmann::json::parse(in).at("iterations").get<std::int64_t>() == trainer_->iteration() &&
             std::filesystem::exists(folder_ / "export" / "teacher_backbone.safetensors");
    } catch (const std::exception&) {
      return false;  // unreadable: export again
    }
  }

  std::string lineage() const { return "stage '" + context_.stage_id + "' of " + context_.experiment.graph_file.string(); }

  void save() {
    if (!lead_) return;  // every process holds the same state; rank 0 writes it
    trainer_->save_checkpoint(checkpoint());
    std::string lines;
    for (const auto& r : trainer_->history()) lines += report_json(r).dump() + "\n";
    write_file_atomically(folder_ / "losses.jsonl", lines);
  }

  // The end of training: the state saved, the teacher exported, and the sources asked for no more tiles.
  void finish(const std::string& why) {
    finished_ = true;
    if (trainer_->iteration() == 0 && batches_->next_sequence() == 0)
      throw FatalError("no batch of " + std::to_string(config_.batch_size) + " crops reached the trainer");
    save();
    if (evaluation_due()) evaluate_teacher();
    if (lead_) export_teacher(*trainer_, folder_ / "export", lineage());
    context_.stream->end_sources("stage '" + context_.stage_id + "' ended training: " + why);
  }

  StageContext context_;
  SslConfig config_;
  std::int64_t iterations_;
  double max_seconds_;
  std::int64_t checkpoint_every_;
  std::int64_t eval_every_;
  std::filesystem::path folder_;
  StagedBatches* batches_ = nullptr;
  std::unique_ptr<SslTrainer> trainer_;
  std::uint64_t trained_before_ = 0;
  double seconds_trained_ = 0;  // step time of every step so far, earlier runs' included: what max_time counts
  augment::CropsLayout layout_;  // what multi_crop must send: the recipe's crops
  std::unique_ptr<TrainingEvaluation> evaluation_;
  std::unique_ptr<EvaluationCurve> curve_;
  std::vector<PacketPtr> pending_;
  bool finished_ = false;
  std::unique_ptr<Collectives> collectives_;  // the processes of a data-parallel run; null: this one alone
  bool lead_ = true;                          // rank 0, or the only process: writes the stage's files
};

}  // namespace

void register_dinov2_finetune(Registry& registry) {
  StageContract c;
  c.type = "dinov2_finetune";
  c.summary = "DINOv2 self-supervised finetuning (DINO + iBOT + KoLeo, the official recipe) on multi_crop's crops";
  c.doc =
      "Trains a ViT from the backbone registry with the official DINOv2 step (docs/finetune.md) on batches of\n"
      "batch_size tiles' crops, in stream order. Every recipe value is a parameter, named as in the recipe TOML of\n"
      "histoflow-ssl-train (a key two sections share gets the section as prefix: dino_loss_weight, ibot_head_*);\n"
      "defaults are the study's config. Training ends after `iterations` steps (0: epochs x epoch_length) or\n"
      "`max_time` of step time, whichever comes first; the stage then asks the sources for no more tiles. The\n"
      "state is checkpointed every checkpoint_every steps and at the end into <output>/<stage>/checkpoint.safetensors\n"
      "(with losses.jsonl); rerunning the same command resumes from it exactly (samples before its position are\n"
      "skipped upstream). At the end the teacher is exported to <output>/<stage>/export/ (teacher_backbone.safetensors\n"
      "for torch_encoder, teacher_checkpoint.pth in the official layout, model_card.json). A partial last batch is\n"
      "dropped, as the official loader does.\n"
      "With eval_train and eval_test (labelled patch sets, e.g. NCT-CRC-HE-100K and CRC-VAL-HE-7K), the teacher is\n"
      "evaluated at iteration 0, every eval_every steps and at the end with the patch benchmark's protocols (weighted\n"
      "20-NN, T = 0.07; linear probe): evaluation_curve.csv and .png (balanced accuracy against iteration and\n"
      "training time) and the best teacher by k-NN in best/. Training waits during an evaluation.\n"
      "Data-parallel under `srun -n W flowrun run ...` (or HISTOFLOW_RANK, HISTOFLOW_WORLD_SIZE, HISTOFLOW_RENDEZVOUS):\n"
      "each process trains on batch_size / W of every batch, c10d's Gloo group sums the gradients and the recipe's\n"
      "batch statistics, and rank 0 writes the files (docs/finetune.md).";
  c.inputs = {{"crops", augment::kCropsKind, "each tile's crops (multi_crop), in stream order", true}};
  c.params = {param_int("iterations", 0, "Training steps; 0: the recipe's epochs x epoch_length", 0),
              param_string("max_time", "", "Training time budget, e.g. \"2h\", \"90m\", \"1h30m\"; empty: none"),
              param_int("checkpoint_every", 100, "Checkpoint every this many steps (and at the end); 0: at the end only", 0)};
  c.params.back() = not_affecting_output(c.params.back());
  // Evaluation does not change the teacher: a rerun with other evaluation settings resumes training.
  for (auto spec : {param_path("eval_train", "Labelled patch set (class folders or CSV): the k-NN memory bank and linear-probe training set"),
                    param_path("eval_test", "Labelled patch set with the same classes: the queries scored by balanced accuracy"),
                    param_int("eval_every", 0, "Evaluate every this many steps (always at 0 and at the end); 0: at 0 and at the end only", 0),
                    param_int("eval_size", 0, "Evaluation images are resized to eval_size x eval_size; 0: global_size", 0, 4096),
                    param_int("eval_max_per_class", 0, "At most this many images per class and set (a seeded sample); 0: all", 0),
                    param_int("eval_k", 20, "k of the weighted k-NN", 1),
                    param_float("eval_temperature", 0.07, "Temperature of the k-NN's weighted vote"),
                    param_bool("eval_linear_probe", true, "Also fit the linear probe (lambda swept on a split of eval_train)")})
    c.params.push_back(not_affecting_output(spec));
  for (const auto& p : recipe_params()) c.params.push_back(spec_of(p));
  c.rules = {ContractRule{"max_time is a duration (2h, 90m, 1h30m, 3600s)",
                          [](RuleCheck& check) {
                            try {
                              parse_duration(std::get<std::string>(check.param("max_time")));
                            } catch (const std::invalid_argument& e) {
                              check.error("max_time", e.what());
                            }
                          }},
             rule_exactly_one_of("weights", "synthetic_weights"), rule_file_exists("weights"), rule_file_exists("eval_train"),
             rule_file_exists("eval_test"),
             ContractRule{"eval_train and eval_test come together; eval_every needs them",
                          [](RuleCheck& check) {
                            const bool train = !std::holds_alternative<std::monostate>(check.param("eval_train"));
                            const bool test = !std::holds_alternative<std::monostate>(check.param("eval_test"));
                            if (train != test) check.error(train ? "eval_train" : "eval_test", "give both eval_train and eval_test, or neither");
                            if (!train && std::get<std::int64_t>(check.param("eval_every")) > 0)
                              check.error("eval_every", "eval_every evaluates on eval_train and eval_test: give them too");
                          }}};
  c.concurrency = Concurrency::Serial;
  c.cardinality = Cardinality::OneToMany;
  c.resumable = true;
  c.example =
      "[stage.finetune]\nuse = \"dinov2_finetune\"\ninput = \"crops\"\nbackbone = \"dinov2_vits14\"\n"
      "weights = \"models/dinov2_vits14_pretrain.pth\"\nbatch_size = 32\nmax_time = \"2h\"\ncheckpoint_every = 100\n";
  c.needs_every_item = true;  // training on every tile
  register_stage<Dinov2Finetune>(registry, std::move(c));
}

}  // namespace histoflow::finetune
