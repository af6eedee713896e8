#include "evaluation_report.hpp"

#include <cstdio>
#include <iomanip>
#include <sstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/csv.hpp"
#include "histoflow/evaluation_common/confusion_matrix_image.hpp"
#include "histoflow/evaluation_common/evaluation_kind.hpp"

namespace histoflow::patch_eval {
namespace {

std::string percent(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", 100.0 * v);
  return text;
}

nlohmann::json metrics_json(const evaluation_common::ClassificationMetrics& m, const std::vector<std::string>& class_names) {
  nlohmann::json per_class = nlohmann::json::object();
  for (std::size_t c = 0; c < class_names.size(); ++c)
    per_class[class_names[c]] = {{"precision", m.precision[c]}, {"recall", m.recall[c]}, {"f1", m.f1[c]}, {"support", m.support[c]}};
  return {{"balanced_accuracy", m.balanced_accuracy}, {"accuracy", m.accuracy}, {"weighted_f1", m.weighted_f1},
          {"macro_f1", m.macro_f1}, {"per_class", per_class}};
}

}  // namespace

std::string file_slug(const std::string& name) {
  std::string slug;
  for (char ch : name) {
    if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.') slug += ch;
    else if (ch == ' ' || ch == '_' || ch == '/') { if (!slug.empty() && slug.back() != '_') slug += '_'; }
  }
  while (!slug.empty() && slug.back() == '_') slug.pop_back();
  return slug.empty() ? "unnamed" : slug;
}

void write_encoder_report(EncoderEvaluation& e, const PatchFeatures& test) {
  const auto classes = static_cast<std::int64_t>(test.class_names.size());
  nlohmann::json methods = nlohmann::json::object();
  for (auto& m : e.methods) {
    m.confusion = evaluation_common::confusion_matrix(test.labels, m.predictions, classes);
    m.metrics = evaluation_common::classification_metrics(m.confusion);
    const std::string slug = file_slug(m.method);
    write_file_atomically(e.folder / ("confusion_" + slug + ".csv"), evaluation_common::confusion_matrix_csv(m.confusion, test.class_names));
    evaluation_common::write_confusion_matrix_png(e.folder / ("confusion_" + slug + ".png"), m.confusion, test.class_names,
                                                  "Confusion: " + m.method + " on " + e.encoder);
    nlohmann::json entry = metrics_json(m.metrics, test.class_names);
    entry["details"] = m.details;
    entry["confusion_matrix"] = {{"csv", "confusion_" + slug + ".csv"}, {"png", "confusion_" + slug + ".png"}};
    methods[m.method] = entry;
  }
  const nlohmann::json record = {{"encoder", e.encoder},
                                 {"output", e.output},
                                 {"weights_sha256", e.weights_sha256},
                                 {"train", {{"file", e.train_file}, {"rows", e.train_rows}}},
                                 {"test", {{"file", e.test_file.empty() ? e.train_file : e.test_file}, {"rows", test.features.rows}}},
                                 {"split", e.split},
                                 {"setting", "test"},
                                 {"classes", test.class_names},
                                 {"methods", methods}};
  write_file_atomically(e.folder / "metrics.json", record.dump(2) + "\n");

  AtomicFile predictions(e.folder / "predictions.csv");
  auto& out = predictions.stream();
  out << "row,path,true";
  for (const auto& m : e.methods) out << ',' << csv_field(m.method);
  out << '\n';
  for (std::int64_t r = 0; r < test.features.rows; ++r) {
    const auto i = static_cast<std::size_t>(r);
    out << r << ',' << csv_field(test.paths.size() > i ? test.paths[i] : "") << ','
        << csv_field(test.class_names[static_cast<std::size_t>(test.labels[i])]);
    for (const auto& m : e.methods) out << ',' << csv_field(test.class_names[static_cast<std::size_t>(m.predictions[i])]);
    out << '\n';
  }
  predictions.commit();
}

std::string summary_markdown(const std::string& stage_id, const std::vector<EncoderEvaluation>& evaluations,
                             const std::vector<std::string>& class_names) {
  std::ostringstream md;
  md << "# " << stage_id << ": patch-level evaluation\n\n";
  md << "| encoder | method | balanced accuracy % | accuracy % | weighted F1 % | train | test | split |\n";
  md << "|---|---|---:|---:|---:|---:|---:|---|\n";
  for (const auto& e : evaluations)
    for (const auto& m : e.methods)
      md << "| " << e.encoder << " | " << m.method << " | " << percent(m.metrics.balanced_accuracy) << " | "
         << percent(m.metrics.accuracy) << " | " << percent(m.metrics.weighted_f1) << " | " << e.train_rows << " | "
         << m.predictions.size() << " | " << e.split << " |\n";
  md << "\n## Recall per class (%)\n\n| encoder | method |";
  for (const auto& name : class_names) md << ' ' << name << " |";
  md << "\n|---|---|";
  for (std::size_t c = 0; c < class_names.size(); ++c) md << "---:|";
  md << '\n';
  for (const auto& e : evaluations)
    for (const auto& m : e.methods) {
      md << "| " << e.encoder << " | " << m.method << " |";
      for (double r : m.metrics.recall) md << ' ' << percent(r) << " |";
      md << '\n';
    }
  md << "\nConfusion matrices (rows: true class, columns: predicted, class order as above): `<encoder>/confusion_<method>.{csv,png}`.\n";
  return md.str();
}

PacketPtr method_evaluation(const EncoderEvaluation& e, const MethodOutcome& m) {
  evaluation_common::EvaluationRecord record;
  record.row = e.encoder;
  record.method = m.method;
  record.setting = "test";
  record.source = e.stage_id;
  record.mean = {{"balanced_accuracy", m.metrics.balanced_accuracy},
                 {"accuracy", m.metrics.accuracy},
                 {"weighted_f1", m.metrics.weighted_f1}};
  return evaluation_common::evaluation_packet(
      record, e.folder, {{"train_rows", e.train_rows}, {"test_rows", static_cast<std::int64_t>(m.predictions.size())}});
}

}  // namespace histoflow::patch_eval
