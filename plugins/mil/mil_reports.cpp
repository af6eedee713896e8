#include "mil_reports.hpp"

#include <torch/version.h>

#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/csv.hpp"
#include "histoflow/evaluation_common/auroc.hpp"
#include "histoflow/evaluation_common/svg_raster.hpp"
#include "histoflow/svg_plot.hpp"
#include "histoflow/version.hpp"
#include "model_file.hpp"

namespace histoflow::mil {
namespace {

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::int64_t mebibytes(std::int64_t bytes) { return (bytes + (1 << 19)) >> 20; }

nlohmann::json number_or_null(double value) { return std::isnan(value) ? nlohmann::json() : nlohmann::json(value); }

nlohmann::json metric_map(const MetricValues& values) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : values) out[name] = number_or_null(value);
  return out;
}

nlohmann::json summary_json(const MetricSummary& s) {
  nlohmann::json per_fold = nlohmann::json::array();
  for (const auto& fold : s.per_fold) per_fold.push_back(metric_map(fold));
  return {{"mean", metric_map(s.mean)}, {"sd", metric_map(s.sd)}, {"ci_low", metric_map(s.ci_low)},
          {"ci_high", metric_map(s.ci_high)}, {"per_fold", per_fold}};
}

std::string fixed(double value) {
  if (std::isnan(value)) return "n/a";
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << value;
  return out.str();
}

std::string cell(const MetricSummary& s, const std::string& metric) {
  std::string text = fixed(s.mean.at(metric));
  if (auto sd = s.sd.find(metric); sd != s.sd.end()) text += " ± " + fixed(sd->second);
  if (auto low = s.ci_low.find(metric); low != s.ci_low.end())
    text += " [" + fixed(low->second) + ", " + fixed(s.ci_high.at(metric)) + "]";
  return text;
}

void write_predictions(const std::filesystem::path& file, const MilRun& run) {
  AtomicFile out(file);
  auto& s = out.stream();
  s << "setting,fold,bag,patient,slides,label,predicted";
  for (const auto& name : run.class_names) s << ',' << csv_field("score_" + name);
  s << '\n' << std::setprecision(8);
  const auto rows = [&](const std::string& setting, const std::vector<Prediction>& predictions, const std::vector<Bag>& bags) {
    for (const auto& p : predictions) {
      const Bag& bag = bags[p.bag];
      const auto& probabilities = p.prediction.probabilities;
      const auto predicted = std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin();
      s << setting << ',' << p.fold << ',' << csv_field(bag.id) << ',' << csv_field(bag.patient) << ','
        << csv_field(join(bag.slides, ";")) << ',' << csv_field(run.class_names[static_cast<std::size_t>(bag.label)]) << ','
        << csv_field(run.class_names[static_cast<std::size_t>(predicted)]);
      for (double v : probabilities) s << ',' << v;
      s << '\n';
    }
  };
  rows("in-domain", run.result->in_domain, *run.bags);
  rows("external", run.result->external, *run.external);
  rows("external (ensemble)", run.result->external_ensemble, *run.external);
  out.commit();
}

void write_attention(const std::filesystem::path& file, const MilRun& run) {
  AtomicFile out(file);
  auto& s = out.stream();
  s << "setting,fold,bag,slide,x,y,attention\n" << std::setprecision(7);
  const auto rows = [&](const std::string& setting, const std::vector<Prediction>& predictions, const std::vector<Bag>& bags) {
    for (const auto& p : predictions) {
      const Bag& bag = bags[p.bag];
      for (std::size_t t = 0; t < p.prediction.attention.size(); ++t)
        s << setting << ',' << p.fold << ',' << csv_field(bag.id) << ',' << csv_field(bag.slides[bag.tile_slide[t]]) << ','
          << bag.coords[2 * t] << ',' << bag.coords[2 * t + 1] << ',' << p.prediction.attention[t] << '\n';
    }
  };
  rows("in-domain", run.result->in_domain, *run.bags);
  rows("external", run.result->external, *run.external);
  out.commit();
}

// Binary: one curve per fold (in-domain test set), the pooled out-of-fold predictions (with the pooled 95% CI
// of the AUROC), then the external ensemble (with its CI). More classes: one-vs-rest curves of the pooled
// out-of-fold predictions, one per class. roc.csv holds every curve's points (the HTML report overlays the
// encoders from it); roc.png draws them, legend and AUROC included. Returns the summary's legend lines.
std::vector<std::string> write_roc(const std::filesystem::path& directory, const MilRun& run) {
  const auto& r = *run.result;
  const std::size_t classes = run.class_names.size();
  svg::LinePlot plot = svg::roc_plot("ROC: " + run.method + " on " + run.encoder);
  std::vector<std::string> legend;
  AtomicFile csv(directory / "roc.csv");
  csv.stream() << "curve,setting,fold,positive_class,auroc,ci_low,ci_high,fpr,tpr\n" << std::setprecision(8);
  const auto optional = [](double value) {  // an empty CSV field for "none"
    std::ostringstream text;
    if (!std::isnan(value)) text << std::setprecision(8) << value;
    return text.str();
  };
  const auto add = [&](const std::vector<Prediction>& predictions, const std::vector<Bag>& bags, std::size_t positive_class,
                       const std::string& name, const std::string& setting, int fold_filter, double ci_low, double ci_high) {
    std::vector<bool> positive;
    std::vector<double> scores;
    for (const auto& p : predictions) {
      if (fold_filter >= 0 && p.fold != fold_filter) continue;
      positive.push_back(bags[p.bag].label == static_cast<std::int64_t>(positive_class));
      scores.push_back(p.prediction.probabilities[positive_class]);
    }
    try {
      const auto roc = evaluation_common::roc_curve(positive, scores);
      const double area = evaluation_common::binary_auroc(positive, scores);
      const std::size_t index = plot.series.size();
      std::string label = name + ": AUROC " + fixed(area);
      if (!std::isnan(ci_low)) label += " [" + fixed(ci_low) + ", " + fixed(ci_high) + "]";
      plot.series.push_back({label, roc.fpr, roc.tpr, index, false, fold_filter < 0});
      legend.push_back(svg::palette_name(index) + ": " + label);
      for (std::size_t i = 0; i < roc.fpr.size(); ++i)
        csv.stream() << csv_field(name) << ',' << csv_field(setting) << ',' << (fold_filter >= 0 ? std::to_string(fold_filter) : "")
                     << ',' << csv_field(run.class_names[positive_class]) << ',' << area << ',' << optional(ci_low) << ','
                     << optional(ci_high) << ',' << roc.fpr[i] << ',' << roc.tpr[i] << '\n';
    } catch (const std::invalid_argument&) {
      legend.push_back(name + ": no curve (one class only)");
    }
  };
  const auto ci = [](const MetricSummary& s, bool high) {
    const auto& values = high ? s.ci_high : s.ci_low;
    const auto it = values.find("auroc");
    return it == values.end() ? std::numeric_limits<double>::quiet_NaN() : it->second;
  };
  if (classes == 2) {
    for (std::size_t f = 0; f < r.folds.size(); ++f)
      add(r.in_domain, *run.bags, 1, "fold " + std::to_string(f) + " (in-domain test)", "in-domain", static_cast<int>(f),
          std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN());
    add(r.in_domain, *run.bags, 1, "in-domain, pooled folds", "in-domain", -1, ci(r.in_domain_metrics, false), ci(r.in_domain_metrics, true));
    if (!r.external_ensemble.empty())
      add(r.external_ensemble, *run.external, 1, "external, fold-ensemble", "external (ensemble)", -1, ci(r.ensemble_metrics, false),
          ci(r.ensemble_metrics, true));
    plot.title += " (positive class " + run.class_names[1] + ")";
  } else {
    for (std::size_t c = 0; c < classes; ++c)
      add(r.in_domain, *run.bags, c, "class " + run.class_names[c] + " vs rest (in-domain, pooled)", "in-domain", -1,
          std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN());
  }
  csv.commit();
  evaluation_common::write_svg_as_png(directory / "roc.png", svg::line_plot(plot));
  return legend;
}

}  // namespace

std::string write_mil_reports(const std::filesystem::path& directory, const MilRun& run) {
  const auto& r = *run.result;
  write_predictions(directory / "predictions.csv", run);
  if (run.has_attention) write_attention(directory / "attention.csv", run);
  const auto legend = write_roc(directory, run);

  // Fold models, and what reproduces them.
  nlohmann::json models = nlohmann::json::array();
  nlohmann::json training = nlohmann::json::array();
  for (std::size_t f = 0; f < r.folds.size(); ++f) {
    const auto& fold = r.folds[f];
    const auto file = directory / "models" / ("fold_" + std::to_string(f) + ".safetensors");
    const std::string sha = save_aggregator(file, fold.trained,
                                            {{"aggregator", run.method}, {"fold", std::to_string(f)},
                                             {"classes", join(run.class_names, ",")}, {"encoder", run.encoder},
                                             {"encoder_weights_sha256", run.weights_sha256},
                                             {"parameters", run.parameters.dump()}});
    models.push_back({{"fold", f}, {"file", file.lexically_relative(directory).string()}, {"sha256", sha}});
    training.push_back({{"fold", f}, {"train_bags", fold.train.size()}, {"validation_bags", fold.validation.size()},
                        {"test_bags", fold.test.size()}, {"best_epoch", fold.trained.best_epoch},
                        {"epochs_run", fold.trained.epochs_run}, {"train_loss", fold.trained.train_loss},
                        {"validation_loss", fold.trained.validation_loss},
                        {"peak_resident_mib", mebibytes(fold.peak_resident_bytes)}});
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& s : run.skipped) skipped.push_back({{"slide", s.slide_id}, {"reason", s.reason}});

  nlohmann::json metrics = {{"stage", run.stage_id}, {"method", run.method}, {"encoder", run.encoder},
                            {"label_column", run.label_column}, {"classes", run.class_names}, {"bag", run.bag_mode},
                            {"bags", run.bags->size()}, {"external_bags", run.external->size()},
                            {"in-domain", summary_json(r.in_domain_metrics)}, {"training", training},
                            {"resident_mib_before_training", mebibytes(r.resident_bytes_before)},
                            {"peak_resident_mib_training", mebibytes(r.peak_resident_bytes)}, {"skipped", skipped}};
  if (!run.external->empty()) {
    metrics["external"] = summary_json(r.external_metrics);
    metrics["external (ensemble)"] = summary_json(r.ensemble_metrics);
  }
  write_file_atomically(directory / "metrics.json", metrics.dump(2) + "\n");

  // Copied, not referenced: the stage folder alone reproduces the run. Written anew on every run (the runtime
  // writes the experiment's copy before any stage opens, so it holds this run's --set overrides).
  bool graph_copied = false;
  if (!run.resolved_graph.empty() && std::filesystem::exists(run.resolved_graph)) {
    std::ifstream in(run.resolved_graph, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read '" + run.resolved_graph.string() + "' to copy it into '" + directory.string() + "'");
    std::ostringstream graph;
    graph << in.rdbuf();
    write_file_atomically(directory / "resolved_graph.toml", graph.str());
    graph_copied = true;
  }
  nlohmann::json reproduce = {{"histoflow_version", kVersion}, {"torch_version", TORCH_VERSION},
                              {"stage", run.stage_id}, {"use", "mil_cv"}, {"parameters", run.parameters},
                              {"encoder", run.encoder}, {"encoder_weights_sha256", run.weights_sha256},
                              {"encoder_output", run.feature_output}, {"models", models},
                              {"resolved_graph", graph_copied ? nlohmann::json("resolved_graph.toml") : nlohmann::json()}};
  write_file_atomically(directory / "reproduce.json", reproduce.dump(2) + "\n");

  std::ostringstream md;
  md << "# " << run.method << " on " << run.encoder << " (stage `" << run.stage_id << "`)\n\n"
     << "Label `" << run.label_column << "` (classes " << join(run.class_names, ", ") << "), " << run.bags->size() << " "
     << run.bag_mode << " bags in " << r.folds.size() << " patient-level folds";
  if (!run.external->empty()) md << ", " << run.external->size() << " external bags (cohort `" << run.external_cohort << "`)";
  md << ".\n\n| setting | auroc | balanced_accuracy | f1 |\n|---|---|---|---|\n";
  const auto row = [&](const std::string& name, const MetricSummary& s) {
    md << "| " << name;
    for (const auto& m : slide_metric_names()) md << " | " << cell(s, m);
    md << " |\n";
  };
  row("in-domain (mean ± sd over folds [pooled 95% CI])", r.in_domain_metrics);
  if (!run.external->empty()) {
    row("external (mean ± sd over fold models)", r.external_metrics);
    row("external, fold-ensemble [95% CI]", r.ensemble_metrics);
  }
  md << "\nPer fold (in-domain test; peak RSS: the process's resident memory, sampled while the fold trained and "
        "predicted):\n\n| fold | train | validation | test | best epoch | auroc | balanced_accuracy | f1 | peak RSS MiB |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  for (std::size_t f = 0; f < r.folds.size(); ++f) {
    const auto& fold = r.folds[f];
    const auto& m = r.in_domain_metrics.per_fold[f];
    md << "| " << f << " | " << fold.train.size() << " | " << fold.validation.size() << " | " << fold.test.size() << " | "
       << fold.trained.best_epoch << "/" << fold.trained.epochs_run << " | " << fixed(m.at("auroc")) << " | "
       << fixed(m.at("balanced_accuracy")) << " | " << fixed(m.at("f1")) << " | " << mebibytes(fold.peak_resident_bytes)
       << " |\n";
  }
  md << "\nMemory: peak resident " << mebibytes(r.peak_resident_bytes) << " MiB during training, "
     << mebibytes(r.resident_bytes_before) << " MiB before it (training bags subsampled to `max_tiles`).\n";
  md << "\nROC curves (`roc.png`, points in `roc.csv`):\n\n";
  for (const auto& line : legend) md << "- " << line << "\n";
  md << "\nSkipped slides: " << run.skipped.size() << "\n";
  for (const auto& s : run.skipped) md << "- `" << s.slide_id << "`: " << s.reason << "\n";
  // Last section, one file per line: what this run wrote into this folder (a test checks every entry exists).
  md << "\n## Files\n\n- `summary.md`: this summary\n- `predictions.csv`: every prediction with its class scores\n";
  if (run.has_attention) md << "- `attention.csv`: attention per tile\n";
  md << "- `metrics.json`: the metrics, per fold and pooled, and the training curves\n- `roc.png`: the ROC curves\n"
        "- `roc.csv`: the ROC curves' points and AUROCs\n";
  for (const auto& model : models) md << "- `" << model["file"].get<std::string>() << "`: fold " << model["fold"] << " model\n";
  md << "- `reproduce.json`: parameters, versions, weight and model hashes\n";
  if (graph_copied) md << "- `resolved_graph.toml`: the run's graph, overrides applied\n";
  if (run.heatmaps_written) md << "- `heatmaps/`: attention heatmaps (`heatmaps/README.md`)\n";
  write_file_atomically(directory / "summary.md", md.str());
  return md.str();
}

}  // namespace histoflow::mil
