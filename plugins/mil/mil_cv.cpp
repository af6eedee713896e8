// mil_cv: weakly-supervised slide classification on stored features. Collects one feature file per slide,
// then at end of stream runs patient-level cross-validation of one aggregator, scores the external cohort
// with every fold model and their ensemble, writes the reports and emits "evaluation" packets.
#include <ATen/Parallel.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "heatmaps.hpp"
#include "histoflow/evaluation_common/evaluation_kind.hpp"
#include "histoflow/features/feature_file_kind.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/stage.hpp"
#include "mil_reports.hpp"
#include "mil_stages.hpp"

namespace histoflow::mil {
namespace {

nlohmann::json value_json(const Value& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) return nullptr;
        else return v;
      },
      value);
}

torch::Device choose_device(const std::string& name, const std::string& stage_id) {
  if (name == "cpu") return torch::kCPU;
  if (torch::cuda::is_available()) return torch::kCUDA;
  if (name == "cuda") throw FatalError("stage '" + stage_id + "': device = \"cuda\" but no CUDA device is available");
  return torch::kCPU;
}

class MilCrossValidation final : public Stage {
 public:
  explicit MilCrossValidation(const StageContext& context) : context_(context) {
    const Params& p = context.params;
    label_column_ = p.get_string("label_column");
    bag_mode_ = p.get_string("bag");
    external_cohort_ = p.get_string("external_cohort");
    explicit_classes_ = p.get_list("classes");
    row_name_ = p.get_string("name");
    auto& o = options_;
    o.folds = static_cast<int>(p.get_int("folds"));
    o.validation_fraction = p.get_float("validation_fraction");
    o.bootstrap = static_cast<int>(p.get_int("bootstrap"));
    const std::int64_t seed = p.get_int("seed");
    o.seed = seed >= 0 ? static_cast<std::uint64_t>(seed) : context.experiment.seed;
    auto& t = o.training;
    t.aggregator = p.get_string("aggregator");
    t.learning_rate = p.get_float("learning_rate");
    t.weight_decay = p.get_float("weight_decay");
    t.epochs = static_cast<int>(p.get_int("epochs"));
    t.patience = static_cast<int>(p.get_int("patience"));
    t.max_tiles = p.get_int("max_tiles");
    t.class_weighting = p.get_bool("class_weighting");
    t.standardize = p.get_bool("standardize");
    t.model.hidden_dim = p.get_int("hidden_dim");
    t.model.dropout = p.get_float("dropout");
    threads_ = static_cast<int>(p.get_int("threads"));
    heatmaps_ = p.get_bool("heatmaps");
    top_k_ = static_cast<int>(p.get_int("top_k"));
    directory_ = context.experiment.output_dir / context.stage_id;
    for (const auto& [name, value] : p.all()) parameters_[name] = value_json(value);
  }

  void open() override {
    options_.training.device = choose_device(context_.params.get_string("device"), context_.stage_id);
    find_aggregator(options_.training.aggregator);  // fails the run now, not after reading every slide
  }

  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    const std::string* slide = input->attribute<std::string>("slide_id");
    const std::string slide_id = slide ? *slide : input->provenance.item_id;
    SlideInput in;
    try {
      in = read_slide_input(*input, label_column_);
    } catch (const std::exception& e) {
      skipped_.push_back({slide_id, e.what()});
      throw;  // also an error record of the run
    }
    check_same_encoder(in);
    for (const auto& [name, value] : input->attributes)
      if (name.rfind("label:", 0) == 0) label_columns_seen_.insert(name.substr(6));
    if (in.rows == 0) {
      skipped_.push_back({in.slide_id, "no tiles (empty feature file)"});
      return;
    }
    if (in.label.empty()) {
      skipped_.push_back({in.slide_id, "no label in column '" + label_column_ + "'"});
      return;
    }
    slides_.push_back(std::move(in));
  }

  void flush(Emitter& out) override {
    if (slides_.empty() && skipped_.empty()) return;  // nothing reached this stage
    if (!label_columns_seen_.count(label_column_)) {
      std::string seen;
      for (const auto& c : label_columns_seen_) seen += (seen.empty() ? "" : ", ") + c;
      throw FatalError("stage '" + context_.stage_id + "': label column '" + label_column_ +
                       "' is missing from every slide; the manifest provides: " + (seen.empty() ? "none" : seen) +
                       " (set label_column, or slide_source's label_columns)");
    }
    // Arrival order depends on thread timing; the protocol must not.
    std::sort(slides_.begin(), slides_.end(), [](const SlideInput& a, const SlideInput& b) { return a.slide_id < b.slide_id; });
    std::vector<std::string> labels;
    for (const auto& s : slides_) labels.push_back(s.label);
    std::vector<std::string> class_names;
    try {
      class_names = class_names_for(labels, explicit_classes_);
    } catch (const std::exception& e) {
      throw FatalError("stage '" + context_.stage_id + "': " + e.what());
    }
    if (class_names.size() < 2)
      throw FatalError("stage '" + context_.stage_id + "': every labelled slide has label '" + class_names.front() +
                       "' in column '" + label_column_ + "': nothing to classify");
    std::vector<Bag> bags, external;
    build_bags(class_names, bags, external);
    options_.training.model.input_dim = slides_.front().dim;
    options_.training.model.classes = static_cast<std::int64_t>(class_names.size());

    at::set_num_threads(threads_);  // process-wide in LibTorch: set right before the work it governs
    // Training runs after the stream has ended, for minutes: say where it is. Early stopping skips a fold's
    // remaining epochs, so the fraction jumps ahead then rather than the ETA running long.
    const int folds = options_.folds, epochs = options_.training.epochs;
    const auto report = [this](const std::string& what, double fraction) {
      if (context_.progress) context_.progress->report(what, fraction);
    };
    CrossValidationOptions options = options_;  // the callback refers to this call's locals
    options.training.on_step = [this] { throw_if_cancelled(context_); };  // SIGTERM stops training within a bag
    options.on_epoch = [&](int fold, int epoch) {
      report("fold " + std::to_string(fold + 1) + "/" + std::to_string(folds) + ", epoch " + std::to_string(epoch) + "/" +
                 std::to_string(epochs),
             kTrainingShare * (fold + static_cast<double>(epoch) / epochs) / folds);
    };
    report("fold 1/" + std::to_string(folds) + ", epoch 0/" + std::to_string(epochs), 0.0);
    CrossValidationResult result;
    try {
      result = run_cross_validation(bags, external, options, [&](int fold, const FoldRun&) {
        report("fold " + std::to_string(fold + 1) + "/" + std::to_string(folds) + " done", kTrainingShare * (fold + 1) / folds);
      });
    } catch (const std::invalid_argument& e) {
      throw FatalError("stage '" + context_.stage_id + "': cannot cross-validate " + std::to_string(bags.size()) + " " +
                       bag_mode_ + " bags: " + e.what());
    }

    MilRun run;
    run.stage_id = context_.stage_id;
    run.method = options_.training.aggregator;
    run.encoder = row_name_.empty() ? encoder_name() : row_name_;
    run.weights_sha256 = slides_.front().weights_sha256;
    run.feature_output = slides_.front().output;
    run.label_column = label_column_;
    run.bag_mode = bag_mode_;
    run.external_cohort = external_cohort_;
    run.class_names = class_names;
    run.bags = &bags;
    run.external = &external;
    run.result = &result;
    run.skipped = skipped_;
    run.parameters = parameters_;
    // The runtime writes it before any stage opens, so this copy is the graph of this run (with its --set).
    run.resolved_graph = context_.experiment.output_dir / "resolved_graph.toml";
    run.has_attention = find_aggregator(run.method).has_attention;
    run.slide_paths = slide_paths_;
    // Heatmaps first, so that summary.md lists only what exists.
    if (heatmaps_ && run.has_attention) {
      report("heatmaps", kTrainingShare);
      write_heatmaps(directory_ / "heatmaps", run, top_k_, [&](std::size_t done, std::size_t total) {
        throw_if_cancelled(context_);  // a slide's heatmap at a time
        report("heatmaps, slide " + std::to_string(done) + "/" + std::to_string(total),
               kTrainingShare + (0.98 - kTrainingShare) * static_cast<double>(done) / static_cast<double>(total));
      });
      run.heatmaps_written = true;
    }
    report("reports", 0.98);
    write_mil_reports(directory_, run);
    const auto folder = std::filesystem::absolute(directory_);
    results_ = {{"summary", folder / "summary.md"}};
    if (run.heatmaps_written) results_.push_back({"attention heatmaps", folder / "heatmaps"});
    report("done", 1.0);

    emit(out, run, "in-domain", result.in_domain_metrics);
    if (!external.empty()) {
      emit(out, run, "external", result.external_metrics);
      emit(out, run, "external (ensemble)", result.ensemble_metrics);
    }
  }

  std::vector<StageResult> results() const override { return results_; }

 private:
  static constexpr double kTrainingShare = 0.9;  // of the end-of-stream work: training and predicting; then heatmaps

  std::string encoder_name() const {
    const auto& s = slides_.front();
    std::string name = s.encoder.empty() ? "features" : s.encoder;
    return name;
  }

  void check_same_encoder(const SlideInput& in) {
    const std::string identity = in.encoder + " (weights " + in.weights_sha256.substr(0, 12) + ", output " + in.output +
                                 ", dim " + std::to_string(in.dim) + ")";
    if (encoder_identity_.empty()) {
      encoder_identity_ = identity;
      first_slide_ = in.slide_id;
    } else if (identity != encoder_identity_) {
      throw FatalError("stage '" + context_.stage_id + "': feature files from two encoders in one stage: slide '" +
                       in.slide_id + "' has " + identity + " but slide '" + first_slide_ + "' has " + encoder_identity_ +
                       "; give each encoder its own mil_cv stage");
    }
  }

  void build_bags(const std::vector<std::string>& class_names, std::vector<Bag>& bags, std::vector<Bag>& external) {
    const auto class_of = [&](const std::string& label) {
      return static_cast<std::int64_t>(std::find(class_names.begin(), class_names.end(), label) - class_names.begin());
    };
    // Each slide's features move into its bag's tensor (no copy): the cohort is held once, not twice.
    const auto to_bag = [&](const std::vector<SlideInput*>& members, const std::string& id) {
      Bag bag;
      bag.id = id;
      bag.patient = members.front()->patient;
      bag.label = class_of(members.front()->label);
      std::vector<torch::Tensor> parts;
      for (std::size_t m = 0; m < members.size(); ++m) {
        SlideInput& s = *members[m];
        bag.slides.push_back(s.slide_id);
        parts.push_back(adopt_as_tensor(std::move(s.features), s.rows, s.dim));
        bag.coords.insert(bag.coords.end(), s.coords.begin(), s.coords.end());
        bag.tile_slide.insert(bag.tile_slide.end(), static_cast<std::size_t>(s.rows), static_cast<std::int32_t>(m));
        slide_paths_[s.slide_id] = s.slide_path;
      }
      bag.features = parts.size() == 1 ? parts.front() : torch::cat(parts);
      return bag;
    };
    if (bag_mode_ == "slide") {
      for (auto& s : slides_) (s.cohort == external_cohort_ ? external : bags).push_back(to_bag({&s}, s.slide_id));
      return;
    }
    std::map<std::pair<bool, std::string>, std::vector<SlideInput*>> patients;  // (external, patient)
    for (auto& s : slides_) patients[{s.cohort == external_cohort_, s.patient}].push_back(&s);
    for (const auto& [key, members] : patients) {
      std::set<std::string> distinct;
      for (const auto* m : members) distinct.insert(m->label);
      if (distinct.size() > 1) {
        for (const auto* m : members)
          skipped_.push_back({m->slide_id, "patient '" + key.second + "' has slides with different labels; a patient bag needs one"});
        continue;
      }
      (key.first ? external : bags).push_back(to_bag(members, key.second));
    }
  }

  void emit(Emitter& out, const MilRun& run, const std::string& setting, const MetricSummary& summary) {
    evaluation_common::EvaluationRecord record;
    record.row = run.encoder;
    record.method = run.method;
    record.setting = setting;
    record.source = context_.stage_id;
    record.mean = summary.mean;
    record.sd = summary.sd;
    record.ci_low = summary.ci_low;
    record.ci_high = summary.ci_high;
    out.emit(evaluation_common::evaluation_packet(record, directory_));
  }

  StageContext context_;
  std::string label_column_, bag_mode_, external_cohort_, row_name_;
  std::vector<std::string> explicit_classes_;
  CrossValidationOptions options_;
  int threads_ = 1, top_k_ = 8;
  bool heatmaps_ = true;
  std::filesystem::path directory_;
  nlohmann::json parameters_ = nlohmann::json::object();
  std::vector<SlideInput> slides_;
  std::vector<SkippedSlide> skipped_;
  std::set<std::string> label_columns_seen_;
  std::string encoder_identity_, first_slide_;
  std::map<std::string, std::string> slide_paths_;
  std::vector<StageResult> results_;  // set once the reports are written
};

}  // namespace

void register_mil_cv(Registry& registry) {
  StageContract c;
  c.type = "mil_cv";
  c.summary = "Slide-level benchmark: patient-level cross-validation of a MIL aggregator on stored features, plus an external cohort";
  c.doc =
      "Input: one feature_file packet per slide (from slide_store), with slide_id, patient, cohort and\n"
      "label:<column>. Slides whose cohort equals `external_cohort` form the external test set; the others are\n"
      "split by patient into stratified folds (no patient in two folds), each with an inner validation split\n"
      "(by patient) for early stopping and model selection. Bags are slides or patients (`bag`). Training:\n"
      "AdamW, one bag per step, class-weighted cross-entropy, training bags subsampled to `max_tiles`;\n"
      "validation, test and external bags are scored whole. Memory is linear in a bag's tiles either way (the\n"
      "transformer's attention in blocks, large layers recomputed in backward, TransMIL's Nystrom attention):\n"
      "a 50,000-tile bag needs no [heads, N, N] matrix.\n"
      "Metrics (scikit-learn definitions): AUROC (macro one-vs-rest for more than two classes), balanced\n"
      "accuracy, F1 (binary: class 1 = the second class; else macro); in-domain mean ± sd over folds with a\n"
      "bootstrap 95% CI of the pooled out-of-fold predictions; external mean ± sd over fold models and the\n"
      "fold-ensemble with a CI. Writes <output>/<stage id>/: predictions.csv, attention.csv, metrics.json,\n"
      "summary.md, roc.png, models/fold_<k>.safetensors, reproduce.json, resolved_graph.toml (a copy of the\n"
      "run's, overrides applied), heatmaps/; summary.md lists what this run wrote and the peak resident memory\n"
      "per fold. Training reports its progress (\"fold 2/5, epoch 3/30\") on the run's progress line.\n"
      "Skipped slides (no label, no tiles, unreadable or unverifiable file) are listed in summary.md; a\n"
      "missing label column, two encoders in one stage, or too few patients of a class for the folds fail\n"
      "the run with the reason. Emits one evaluation packet per setting at end of stream.";
  c.inputs = {{"features", features::kFeatureFileKind, "one feature file per slide (slide_store)"}};
  PortSpec evaluations{"evaluations", evaluation_common::kEvaluationKind, "per setting: encoder, method, setting, mean/sd/ci per metric"};
  evaluations.may_be_unused = true;
  c.outputs = {evaluations};
  ParamSpec aggregator = param_string("aggregator", "gated_attention",
                                      "Aggregator: mean_mlp, gated_attention, clam_sb, transmil, transformer, or one a plugin registers");
  aggregator.dynamic_choices = [] { return aggregator_names(); };
  c.params = {
      param_string("label_column", "label", "Manifest label column to predict (the packets' label:<column>)"),
      aggregator,
      param_string("bag", "slide", "What one bag is: every slide, or all slides of a patient", {"slide", "patient"}),
      param_int("folds", 5, "Cross-validation folds (by patient, stratified)", 2, 100),
      param_float("validation_fraction", 0.2, "Fraction of each fold's training patients held out for early stopping", 0, 0.5),
      param_string("external_cohort", "external", "Slides whose cohort attribute has this value are the external test set"),
      param_string_list("classes", {},
                        "Class order (label values); empty: sorted labels. For two classes the second is the positive one"),
      param_int("epochs", 30, "Maximum training epochs per fold", 1, 10000),
      param_int("patience", 5, "Epochs without a lower validation loss before stopping", 1, 10000),
      param_float("learning_rate", 1e-4, "AdamW learning rate", 0, 1),
      param_float("weight_decay", 1e-2, "AdamW weight decay", 0, 10),
      param_int("max_tiles", 512,
                "Tiles sampled at random (seeded) from a training bag at each step (0 = all: memory stays linear in "
                "the bag size, the transformer's training time grows with its square)", 0),
      param_int("hidden_dim", 512, "Width of the aggregator (the transformer's model width)", 8, 8192),
      param_float("dropout", 0.25, "Dropout rate in the aggregator", 0, 0.9),
      param_bool("class_weighting", true, "Weight the loss by inverse class frequency of the training bags"),
      param_bool("standardize", true, "Z-score the features with the mean and sd of each fold's training tiles"),
      param_int("bootstrap", 1000, "Bootstrap resamples for the 95% confidence intervals (0 = none)", 0, 100000),
      param_int("seed", -1, "Seed of folds, initialisation and sampling (-1 = the experiment seed)", -1),
      not_affecting_output(param_int("threads", 1, "LibTorch intra-op threads (results are reproducible for a given count)", 1, 256)),
      not_affecting_output(param_string("device", "auto", "Training device: auto (CUDA when available), cpu or cuda", {"auto", "cpu", "cuda"})),
      param_string("name", "", "Row name in the comparison table; empty: the encoder attribute of the features"),
      param_bool("heatmaps", true, "Attention aggregators: write heatmaps/ (overlay on the slide thumbnail, top tiles)"),
      param_int("top_k", 8, "Tiles in each heatmap's top-attention montage", 1, 64),
  };
  c.example =
      "[stage.mil_resnet]\nuse = \"mil_cv\"\ninput = \"store_resnet\"\naggregator = \"gated_attention\"\nfolds = 5\nepochs = 30\n";
  c.needs_every_item = true;  // folds over the whole cohort
  register_stage<MilCrossValidation>(registry, std::move(c));
}

}  // namespace histoflow::mil
