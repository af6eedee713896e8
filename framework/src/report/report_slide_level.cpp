// Slide-level (mil_cv) results: ROC curves of every encoder overlaid (from each stage's roc.csv), and per stage
// its ROC per fold, confusion matrices counted from predictions.csv, per-fold metrics and, for two slides per
// class, the attention heatmap and the most attended tiles the stage drew.
#include <algorithm>
#include <cmath>
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

struct Curve {
  std::string name, setting, fold, positive;
  double auroc = kNaN, ci_low = kNaN, ci_high = kNaN;
  std::vector<double> fpr, tpr;
};

std::vector<Curve> read_curves(const CsvTable& table) {
  const CsvColumns field{table};
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
  const CsvColumns field{predictions};
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
  const CsvColumns field{predictions};
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
      for (const auto& r : predictions->records) seen.insert(CsvColumns{*predictions}(r, "label"));
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


}  // namespace histoflow::report
