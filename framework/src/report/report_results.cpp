// The results sections: comparison tables (CIs, the best value of each metric marked), slide-level MIL results (ROC
// curves overlaid across encoders, per-stage ROC per fold, confusion matrices, per-fold metrics, attention
// heatmaps for a few slides per class), patch-level k-NN / linear probe results, and finetuning curves.
// Everything is read from the files the stages wrote; nothing is recomputed but counts.
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "histoflow/svg_plot.hpp"
#include "report_parts.hpp"

namespace histoflow::report {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double parse_number(const std::string& text) {
  if (text.empty()) return kNaN;
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    return used == text.size() ? value : kNaN;
  } catch (const std::exception&) {
    return kNaN;
  }
}

// A CSV table's field by column name ("" when the column or field is absent).
struct Columns {
  const CsvTable& table;
  std::string operator()(const CsvRecord& record, const std::string& name) const {
    const int c = table.column(name);
    return c >= 0 && static_cast<std::size_t>(c) < record.fields.size() ? record.fields[static_cast<std::size_t>(c)] : "";
  }
};

bool has_columns(const CsvTable& table, std::initializer_list<const char*> names) {
  return std::all_of(names.begin(), names.end(), [&](const char* n) { return table.column(n) >= 0; });
}

// ---- comparison tables -----------------------------------------------------------------------------------

std::string comparison_table(RunFolder& run, const fs::path& file, const std::string& stage_id) {
  const auto table = run.csv(file, "comparison table of stage '" + stage_id + "'");
  if (!table) return "";
  if (!has_columns(*table, {"encoder", "method", "setting", "metric", "mean", "sd", "ci_low", "ci_high"})) {
    run.missing.push_back(run.relative(file) + ": not a comparison table (columns encoder, method, setting, metric, mean, sd, ci_low, ci_high)");
    return "";
  }
  const Columns field{*table};
  // A table column per (encoder, source): the same encoder scored by two stages stays two columns.
  using Source = std::pair<std::string, std::string>;  // encoder, source
  using Row = std::array<std::string, 3>;             // method, setting, metric
  std::vector<Source> sources;
  std::vector<Row> rows;
  std::map<std::pair<Source, Row>, const CsvRecord*> cells;
  std::map<std::string, int> sources_per_encoder;
  for (const auto& r : table->records) {
    const Source source{field(r, "encoder"), field(r, "source")};
    const Row row{field(r, "method"), field(r, "setting"), field(r, "metric")};
    if (std::find(sources.begin(), sources.end(), source) == sources.end()) sources.push_back(source), ++sources_per_encoder[source.first];
    if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
    cells[{source, row}] = &r;
  }
  std::map<Row, double> best;
  for (const auto& [key, record] : cells) {
    const double mean = parse_number(field(*record, "mean"));
    if (std::isnan(mean)) continue;
    auto [it, inserted] = best.emplace(key.second, mean);
    if (!inserted) it->second = std::max(it->second, mean);
  }
  // In-domain results first, then the rest in the CSV's order.
  std::stable_partition(rows.begin(), rows.end(), [](const Row& row) { return row[1] == "in-domain"; });
  // One row per metric (method, setting, metric) and one column per encoder: a table as wide as the encoders.
  std::ostringstream out;
  out << "<h3>" << html_escape(run.relative(file)) << " <span class=\"note\">(stage " << html_escape(stage_id) << ")</span></h3>\n"
      << "<div class=\"wide\"><table class=\"comparison\" data-csv=\"" << html_escape(run.relative(file))
      << "\">\n<tr><th>method</th><th>setting</th><th>metric</th>";
  for (const auto& [encoder, source] : sources)
    out << "<th>" << html_escape(sources_per_encoder[encoder] > 1 ? encoder + " (" + source + ")" : encoder) << "</th>";
  out << "</tr>\n";
  for (const auto& row : rows) {
    out << "<tr><td>" << html_escape(row[0]) << "</td><td>" << html_escape(row[1]) << "</td><th>" << html_escape(row[2]) << "</th>";
    for (const auto& source : sources) {
      const auto it = cells.find({source, row});
      if (it == cells.end()) {
        out << "<td>–</td>";
        continue;
      }
      const CsvRecord& r = *it->second;
      const double mean = parse_number(field(r, "mean"));
      const bool is_best = !std::isnan(mean) && best.count(row) && mean == best.at(row);
      out << "<td class=\"num" << (is_best ? " best" : "") << "\" data-encoder=\"" << html_escape(source.first) << "\" data-source=\""
          << html_escape(source.second) << "\" data-method=\"" << html_escape(row[0]) << "\" data-setting=\"" << html_escape(row[1])
          << "\" data-metric=\"" << html_escape(row[2]) << "\"";
      // The CSV's text, exactly: the numbers a reader checks against comparison.csv. An empty field: no attribute.
      for (const auto& [column, attribute] :
           {std::pair{"mean", "data-mean"}, {"sd", "data-sd"}, {"ci_low", "data-ci-low"}, {"ci_high", "data-ci-high"}})
        if (!field(r, column).empty()) out << ' ' << attribute << "=\"" << html_escape(field(r, column)) << "\"";
      out << ">" << (field(r, "mean").empty() ? "n/a" : svg::fixed(mean, 3));
      if (!field(r, "sd").empty()) out << " ± " << svg::fixed(parse_number(field(r, "sd")), 3);
      if (!field(r, "ci_low").empty() && !field(r, "ci_high").empty())
        out << " [" << svg::fixed(parse_number(field(r, "ci_low")), 3) << ", " << svg::fixed(parse_number(field(r, "ci_high")), 3) << "]";
      out << (is_best ? " ★" : "") << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table></div>\n<p class=\"note\">Cells: mean ± sd over folds, or value [95% bootstrap CI], or both. ★ and green: the "
         "best (highest) value of the row's metric across encoders.</p>\n";
  return out.str();
}

// ---- slide level -----------------------------------------------------------------------------------------

struct Curve {
  std::string name, setting, fold, positive;
  double auroc = kNaN, ci_low = kNaN, ci_high = kNaN;
  std::vector<double> fpr, tpr;
};

std::vector<Curve> read_curves(const CsvTable& table) {
  const Columns field{table};
  std::vector<Curve> curves;
  for (const auto& r : table.records) {
    if (curves.empty() || curves.back().name != field(r, "curve"))
      curves.push_back({field(r, "curve"), field(r, "setting"), field(r, "fold"), field(r, "positive_class"),
                        parse_number(field(r, "auroc")), parse_number(field(r, "ci_low")), parse_number(field(r, "ci_high")), {}, {}});
    curves.back().fpr.push_back(parse_number(field(r, "fpr")));
    curves.back().tpr.push_back(parse_number(field(r, "tpr")));
  }
  return curves;
}

std::string auroc_text(const Curve& c) {
  std::string text = "AUROC " + svg::fixed(c.auroc, 3);
  if (!std::isnan(c.ci_low)) text += " [" + svg::fixed(c.ci_low, 3) + ", " + svg::fixed(c.ci_high, 3) + "]";
  return text;
}

std::string confusion_from_predictions(const CsvTable& predictions, const std::vector<std::string>& classes,
                                       const std::string& setting, const std::string& title) {
  const Columns field{predictions};
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < classes.size(); ++i) index[classes[i]] = i;
  svg::ConfusionMatrix matrix{title, classes, std::vector<std::vector<std::int64_t>>(classes.size(), std::vector<std::int64_t>(classes.size(), 0))};
  std::size_t rows = 0;
  for (const auto& r : predictions.records) {
    if (field(r, "setting") != setting) continue;
    const auto t = index.find(field(r, "label")), p = index.find(field(r, "predicted"));
    if (t == index.end() || p == index.end()) continue;
    ++matrix.counts[t->second][p->second], ++rows;
  }
  return rows == 0 ? "" : svg::confusion_matrix(matrix);
}

// Per class: the bag predicted most confidently right and the one predicted least confidently (often wrong).
std::vector<std::pair<std::string, std::string>> heatmap_choice(const CsvTable& predictions, const std::vector<std::string>& classes) {
  const Columns field{predictions};
  std::vector<std::pair<std::string, std::string>> chosen;  // (class, first slide of the bag)
  for (const auto& c : classes) {
    std::vector<std::pair<double, std::string>> bags;
    for (const auto& r : predictions.records)
      if (field(r, "setting") == "in-domain" && field(r, "label") == c) {
        std::string slides = field(r, "slides");
        const double score = parse_number(field(r, "score_" + c));  // NaN (a diverged fold) sorts last
        bags.emplace_back(std::isnan(score) ? -std::numeric_limits<double>::infinity() : score, slides.substr(0, slides.find(';')));
      }
    std::sort(bags.begin(), bags.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    if (!bags.empty()) chosen.emplace_back(c, bags.front().second);
    if (bags.size() > 1) chosen.emplace_back(c, bags.back().second);
  }
  return chosen;
}

std::string heatmaps(RunFolder& run, const fs::path& folder, const CsvTable& predictions, const std::vector<std::string>& classes) {
  if (!fs::is_directory(folder / "heatmaps")) return "";
  std::ostringstream out;
  out << "<h4>Attention heatmaps</h4>\n<p class=\"note\">Per class: the slide predicted most confidently right and the one "
         "predicted least confidently; each with its most attended tiles.</p>\n<div class=\"figures\">\n";
  for (const auto& [label, slide] : heatmap_choice(predictions, classes)) {
    const auto overlay = folder / "heatmaps" / (slide + ".png");
    if (!fs::exists(overlay)) {
      run.missing.push_back(run.relative(overlay) + ": no heatmap for slide '" + slide + "' (heatmaps/README.md says why)");
      continue;
    }
    out << "<figure>";
    if (const auto png = run.bytes(overlay, "heatmap")) out << png_image(*png, "attention heatmap of " + slide, 640);
    std::vector<fs::path> montages;  // <slide>_top<k>.png, not another slide's whose id starts the same
    for (const auto& entry : fs::directory_iterator(folder / "heatmaps")) {
      const auto name = entry.path().filename().string();
      const auto k = name.substr(std::min(name.size(), slide.size() + 4));
      if (name.rfind(slide + "_top", 0) == 0 && k.size() > 4 && k.substr(k.size() - 4) == ".png" &&
          k.find_first_not_of("0123456789") == k.size() - 4)
        montages.push_back(entry.path());
    }
    std::sort(montages.begin(), montages.end());
    for (const auto& montage : montages)
      if (const auto png = run.bytes(montage, "top tiles")) out << "<br>" << png_image(*png, "most attended tiles of " + slide, 640);
    out << "<figcaption>class " << html_escape(label) << ": " << html_escape(slide) << "</figcaption></figure>\n";
  }
  out << "</div>\n";
  return out.str();
}

std::string per_fold_table(const nlohmann::json& metrics) {
  const auto list = [](const nlohmann::json& value) { return value.is_array() ? value : nlohmann::json::array(); };
  const auto in_domain = list(json_member(json_member(metrics, "in-domain"), "per_fold"));
  const auto external = list(json_member(json_member(metrics, "external"), "per_fold"));
  const auto training = list(json_member(metrics, "training"));
  const std::vector<std::string> names{"auroc", "balanced_accuracy", "f1"};
  std::ostringstream out;
  out << "<table><tr><th>fold</th><th class=\"num\">train / val / test bags</th><th class=\"num\">best epoch</th>";
  for (const auto& n : names) out << "<th class=\"num\">in-domain " << n << "</th>";
  if (!external.empty())
    for (const auto& n : names) out << "<th class=\"num\">external " << n << "</th>";
  out << "<th class=\"num\">peak RSS MiB</th></tr>\n";
  for (std::size_t f = 0; f < in_domain.size(); ++f) {
    const auto t = f < training.size() ? training[f] : nlohmann::json::object();
    out << "<tr><td>" << f << "</td><td class=\"num\">" << json_number(t, "train_bags", 0) << " / " << json_number(t, "validation_bags", 0)
        << " / " << json_number(t, "test_bags", 0) << "</td><td class=\"num\">" << json_number(t, "best_epoch", 0) << "/"
        << json_number(t, "epochs_run", 0) << "</td>";
    for (const auto& n : names) out << "<td class=\"num\">" << json_number(in_domain[f], n, 3) << "</td>";
    if (!external.empty())
      for (const auto& n : names) out << "<td class=\"num\">" << (f < external.size() ? json_number(external[f], n, 3) : "–") << "</td>";
    out << "<td class=\"num\">" << json_number(t, "peak_resident_mib", 0) << "</td></tr>\n";
  }
  return out.str() + "</table>\n";
}

// ---- patch level -----------------------------------------------------------------------------------------

std::string confusion_from_csv(const CsvTable& table, const std::string& title) {
  svg::ConfusionMatrix matrix{title, {table.header.begin() + 1, table.header.end()}, {}};
  for (const auto& r : table.records) {
    matrix.counts.emplace_back();
    for (std::size_t c = 1; c < r.fields.size(); ++c) {
      const double count = parse_number(r.fields[c]);
      if (!(count >= 0 && count < 9e15) || count != std::floor(count))
        throw std::invalid_argument("line " + std::to_string(r.line) + ": '" + r.fields[c] + "' is not a count");
      matrix.counts.back().push_back(static_cast<std::int64_t>(count));
    }
  }
  return svg::confusion_matrix(matrix);
}

// One mil_cv stage: ROC per fold (and its pooled and ensemble curves added to the overlays), confusion
// matrices, per-fold metrics, heatmaps.
std::string slide_level_stage(RunFolder& run, const GraphStage& stage, std::map<std::string, svg::LinePlot>& overlays,
                              std::vector<std::string>& order) {
  const fs::path folder = run.dir / stage.id;
  const auto metrics = run.json(folder / "metrics.json", "metrics of stage '" + stage.id + "'");
  std::string name = stage.id;
  std::vector<std::string> classes;
  if (metrics) {
    name = json_text(*metrics, "method", stage.id) + " on " + json_text(*metrics, "encoder", "?");
    for (const auto& c : json_member(*metrics, "classes"))
      if (c.is_string()) classes.push_back(c.get<std::string>());
  }
  std::ostringstream details;
  details << "<h3 id=\"stage-" << html_escape(stage.id) << "\">" << html_escape(name) << " <span class=\"note\">(stage "
          << html_escape(stage.id) << ")</span></h3>\n";
  if (metrics)
    details << "<p>Label <code>" << html_escape(json_text(*metrics, "label_column")) << "</code>, " << json_number(*metrics, "bags", 0)
            << " " << html_escape(json_text(*metrics, "bag")) << " bags, " << json_number(*metrics, "external_bags", 0)
            << " external bags.</p>\n";
  details << "<div class=\"figures\">\n";
  if (fs::exists(folder / "roc.csv") || metrics) {
    if (const auto table = run.csv(folder / "roc.csv", "ROC curves of stage '" + stage.id + "'")) {
      const auto curves = read_curves(*table);
      // The stage's own roc.png, drawn again inline: the same title, curves and legend.
      auto per_fold = svg::roc_plot("ROC: " + name);
      if (classes.size() == 2 && !curves.empty()) per_fold.title += " (positive class " + curves.front().positive + ")";
      for (const auto& c : curves) {
        per_fold.series.push_back({c.name + ": " + auroc_text(c), c.fpr, c.tpr, per_fold.series.size(), false, c.fold.empty()});
        if (!c.fold.empty()) continue;
        if (!overlays.count(c.setting)) order.push_back(c.setting);
        auto& overlay = overlays.try_emplace(c.setting, svg::roc_plot("ROC, " + c.setting + ": encoders overlaid")).first->second;
        const bool one_vs_rest = c.name.rfind("class ", 0) == 0;
        overlay.series.push_back({name + (one_vs_rest ? " · " + c.name.substr(0, c.name.find(" (")) : "") + ": " + auroc_text(c), c.fpr,
                                  c.tpr, overlay.series.size()});
      }
      details << figure(svg::line_plot(per_fold), "Dashed: the pooled or ensemble curves; binary labels: with the 95% bootstrap CI of the AUROC.");
    }
  }
  if (const auto predictions = run.csv(folder / "predictions.csv", "predictions of stage '" + stage.id + "'")) {
    if (classes.empty()) {
      std::set<std::string> seen;
      for (const auto& r : predictions->records) seen.insert(Columns{*predictions}(r, "label"));
      classes.assign(seen.begin(), seen.end());
    }
    for (const auto& [setting, words] : {std::pair{"in-domain", "in-domain, out-of-fold"}, {"external (ensemble)", "external, fold-ensemble"}}) {
      const auto matrix = confusion_from_predictions(*predictions, classes, setting, "Confusion (" + std::string(words) + "): " + name);
      if (!matrix.empty()) details << figure(matrix);
    }
    details << "</div>\n";
    if (metrics) details << "<h4>Per fold</h4>\n" << per_fold_table(*metrics);
    details << heatmaps(run, folder, *predictions, classes);
  } else {
    details << "</div>\n";
  }
  return details.str();
}

}  // namespace

std::string comparison_section(RunFolder& run) {
  std::vector<std::pair<fs::path, std::string>> files;
  for (const auto* stage : run.stages_using("comparison_table")) {
    const std::string name = stage->parameters.value("csv", "");
    if (!name.empty()) files.emplace_back(run.dir / name, stage->id);
  }
  if (run.stages.empty() && fs::is_directory(run.dir))  // no graph: every comparison CSV at the top
    for (const auto& entry : fs::directory_iterator(run.dir))
      if (entry.path().extension() == ".csv") {
        std::ifstream in(entry.path());
        std::string header;
        std::getline(in, header);
        if (header.rfind("encoder,method,setting,metric,mean", 0) == 0) files.emplace_back(entry.path(), "?");
      }
  std::sort(files.begin(), files.end());
  if (files.empty()) return "";
  std::string out = "<section id=\"comparison\"><h2>Comparison</h2>\n";
  for (const auto& [file, stage] : files) out += comparison_table(run, file, stage);
  return out + "</section>\n";
}

std::string slide_level_section(RunFolder& run) {
  const auto stages = run.stages_using("mil_cv");
  if (stages.empty()) return "";
  std::map<std::string, svg::LinePlot> overlays;  // setting -> curves of every stage
  std::vector<std::string> order;
  std::ostringstream details;
  for (const auto* stage : stages) {
    try {  // a damaged file costs its stage's part, not the others'
      details << slide_level_stage(run, *stage, overlays, order);
    } catch (const std::exception& e) {
      run.missing.push_back("stage '" + stage->id + "': its slide-level results not drawn: " + e.what());
    }
  }
  std::ostringstream out;
  out << "<section id=\"slide-level\"><h2>Slide level (MIL)</h2>\n<div class=\"figures\">\n";
  for (const auto& setting : order)
    out << figure(svg::line_plot(overlays.at(setting)), setting == "in-domain"
                                                            ? "Out-of-fold predictions of every fold pooled, one curve per encoder and aggregator."
                                                            : "The mean of the fold models on the external cohort, one curve per encoder and aggregator.");
  out << "</div>\n" << details.str() << "</section>\n";
  return out.str();
}

std::string patch_level_section(RunFolder& run) {
  std::vector<const GraphStage*> stages = run.stages_using("knn_eval");
  for (const auto* s : run.stages_using("linear_probe")) stages.push_back(s);
  if (stages.empty()) return "";
  std::ostringstream out;
  out << "<section id=\"patch-level\"><h2>Patch level (k-NN, linear probe)</h2>\n";
  for (const auto* stage : stages) {
    const fs::path folder = run.dir / stage->id;
    out << "<h3>" << html_escape(stage->id) << " <span class=\"note\">(" << html_escape(stage->use) << ")</span></h3>\n";
    std::vector<fs::path> encoders;
    if (fs::is_directory(folder))
      for (const auto& entry : fs::directory_iterator(folder))
        if (fs::exists(entry.path() / "metrics.json")) encoders.push_back(entry.path());
    std::sort(encoders.begin(), encoders.end());
    if (encoders.empty()) {
      run.missing.push_back(run.relative(folder) + ": no <encoder>/metrics.json, so no patch-level results of stage '" + stage->id + "'");
      continue;
    }
    std::ostringstream figures;
    out << "<table><tr><th>encoder</th><th>method</th><th class=\"num\">accuracy</th><th class=\"num\">balanced accuracy</th>"
           "<th class=\"num\">macro F1</th></tr>\n";
    for (const auto& encoder_folder : encoders) {
      const auto metrics = run.json(encoder_folder / "metrics.json", "patch metrics");
      if (!metrics) continue;
      const std::string encoder = json_text(*metrics, "encoder", encoder_folder.filename().string());
      const nlohmann::json& methods = json_member(*metrics, "methods");
      if (!methods.is_object()) {
        run.missing.push_back(run.relative(encoder_folder / "metrics.json") + ": no \"methods\" object, so no patch-level results");
        continue;
      }
      for (const auto& [method, m] : methods.items()) {
        out << "<tr><td>" << html_escape(encoder) << "</td><td>" << html_escape(method) << "</td><td class=\"num\">"
            << json_number(m, "accuracy", 3) << "</td><td class=\"num\">" << json_number(m, "balanced_accuracy", 3)
            << "</td><td class=\"num\">" << json_number(m, "macro_f1", 3) << "</td></tr>\n";
        const std::string csv = json_text(json_member(m, "confusion_matrix"), "csv");
        if (csv.empty()) continue;
        if (const auto table = run.csv(encoder_folder / csv, "confusion matrix"); table && table->header.size() > 1) {
          try {
            figures << figure(confusion_from_csv(*table, "Confusion: " + method + " on " + encoder));
          } catch (const std::exception& e) {
            run.missing.push_back(run.relative(encoder_folder / csv) + ": " + e.what());
          }
        }
      }
    }
    out << "</table>\n<div class=\"figures\">\n" << figures.str() << "</div>\n";
  }
  return out.str() + "</section>\n";
}

std::string finetune_section(RunFolder& run) {
  const auto stages = run.stages_using("dinov2_finetune");
  if (stages.empty()) return "";
  std::ostringstream out;
  out << "<section id=\"finetuning\"><h2>Finetuning</h2>\n";
  for (const auto* stage : stages) {
    out << "<h3>" << html_escape(stage->id) << "</h3>\n";
    const auto table = run.csv(run.dir / stage->id / "evaluation_curve.csv", "finetuning curve of stage '" + stage->id + "'");
    if (!table || table->records.empty()) continue;
    const Columns field{*table};
    svg::TrainingCurves curves;
    for (const auto& r : table->records) {
      curves.iteration.push_back(parse_number(field(r, "iteration")));
      curves.training_seconds.push_back(parse_number(field(r, "training_seconds")));
      curves.knn_accuracy.push_back(parse_number(field(r, "knn_balanced_accuracy")));
      curves.linear_accuracy.push_back(parse_number(field(r, "linear_probe_balanced_accuracy")));
    }
    const auto [by_iteration, by_time] = svg::training_curve_figures(curves);
    out << "<div class=\"figures\">\n" << figure(by_iteration)
        << figure(by_time, "Training time excludes the evaluations themselves.") << "</div>\n";
  }
  return out.str() + "</section>\n";
}

}  // namespace histoflow::report
