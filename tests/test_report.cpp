// The HTML report (histoflow/report.hpp) on run folders written by hand: what it shows from each file, and what
// it says when files are missing. tests/report/report_test.sh renders a real run's report in Chromium.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <sstream>

#include "histoflow/report.hpp"
#include "support/fresh_folder.hpp"

using histoflow::testing::fresh_folder;

namespace {

void write(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

std::string read(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const char* kGraph = R"(schema_version = 1
[experiment]
name = "bench"
output = "."
[stage.slides]
use = "slide_source"
[stage.tiles]
use = "tissue_tiler"
inputs = ["slides"]
[stage.mil_uni]
use = "mil_cv"
inputs = ["tiles.grid"]
[stage.compare]
use = "comparison_table"
inputs = ["mil_uni"]
csv = "comparison.csv"
[stage.finetune]
use = "dinov2_finetune"
after = ["compare"]
)";

// A finished run with one failed slide: the summary, the graph, a comparison table, one MIL stage's files.
std::filesystem::path finished_run() {
  const auto dir = fresh_folder("report-run");
  write(dir / "resolved_graph.toml", kGraph);
  write(dir / "run_summary.json", R"json({"experiment": "bench", "graph": "/g/bench.toml", "status": "completed_with_errors",
    "wall_seconds": 12.5, "peak_rss_mb": 1500.2, "items_generated": 3, "items_retired": 3, "peak_in_flight": 2, "max_in_flight": 4,
    "peak_tiles_in_flight": 10, "max_tiles_in_flight": 256, "histoflow_version": "0.1.0",
    "errors": [{"stage": "tiles", "item": "slide_bad", "sequence": 2, "message": "cannot open 'bad.svs': not a slide"}],
    "warnings": [], "stages": [{"id": "slides", "calls": 3, "errors": 0, "busy_seconds": 0.1, "open_seconds": 0, "restored": 0, "skipped": 0, "left_to_others": 0},
    {"id": "tiles", "calls": 3, "errors": 1, "busy_seconds": 0.2, "open_seconds": 0, "restored": 2, "skipped": 0, "left_to_others": 0}],
    "results": [{"stage": "compare", "what": "comparison table (CSV)", "path": "comparison.csv"}]})json");
  write(dir / "comparison.csv",
        "encoder,method,setting,metric,mean,sd,ci_low,ci_high,source\n"
        "uni,gated_attention,external (ensemble),auroc,0.9,,0.8,0.95,mil_uni\n"
        "uni,gated_attention,in-domain,auroc,0.81234,0.05,0.7,0.9,mil_uni\n"
        "ctranspath,gated_attention,in-domain,auroc,0.85,0.04,,,mil_ctp\n"
        // A published number (comparison_table's `reference`): shown, never this run's best.
        "ctranspath (reference),gated_attention,in-domain,auroc,0.95,,,,reference\n");
  write(dir / "mil_uni" / "metrics.json", R"({"method": "gated_attention", "encoder": "uni", "classes": ["0", "1"], "label_column": "label",
    "bag": "slide", "bags": 4, "external_bags": 0, "in-domain": {"per_fold": [{"auroc": 1.0, "balanced_accuracy": 1.0, "f1": 1.0},
    {"auroc": 0.5, "balanced_accuracy": 0.5, "f1": 0.0}]}, "training": [{"train_bags": 2, "validation_bags": 1, "test_bags": 2,
    "best_epoch": 3, "epochs_run": 5, "peak_resident_mib": 900}, {"train_bags": 2, "validation_bags": 1, "test_bags": 2, "best_epoch": 4,
    "epochs_run": 5, "peak_resident_mib": 910}]})");
  write(dir / "mil_uni" / "predictions.csv",
        "setting,fold,bag,patient,slides,label,predicted,score_0,score_1\n"
        "in-domain,0,s1,p1,s1,0,0,0.9,0.1\nin-domain,0,s2,p2,s2,1,1,0.2,0.8\n"
        "in-domain,1,s3,p3,s3,0,1,0.4,0.6\nin-domain,1,s4,p4,s4,1,1,0.3,0.7\n");
  write(dir / "mil_uni" / "roc.csv",
        "curve,setting,fold,positive_class,auroc,ci_low,ci_high,fpr,tpr\n"
        "fold 0 (in-domain test),in-domain,0,1,1,,,0,0\nfold 0 (in-domain test),in-domain,0,1,1,,,0,1\nfold 0 (in-domain test),in-domain,0,1,1,,,1,1\n"
        "\"in-domain, pooled folds\",in-domain,,1,0.75,0.5,1,0,0\n\"in-domain, pooled folds\",in-domain,,1,0.75,0.5,1,0.5,1\n"
        "\"in-domain, pooled folds\",in-domain,,1,0.75,0.5,1,1,1\n");
  return dir;
}

}  // namespace

TEST_CASE("the report shows the summary with failing slides, the graph, the comparison table with best marked", "[report]") {
  const auto dir = finished_run();
  const auto outcome = histoflow::write_report(dir);
  CHECK(outcome.file == dir / "report.html");
  const std::string html = read(outcome.file);
  CHECK_THAT(html, Catch::StartsWith("<!DOCTYPE html>"));
  CHECK_THAT(html, Catch::Contains("completed with errors"));
  CHECK_THAT(html, Catch::Contains("<td>slide_bad</td><td>cannot open &#39;bad.svs&#39;: not a slide</td>"));
  CHECK_THAT(html, Catch::Contains("1500 MiB resident"));
  CHECK_THAT(html, Catch::Contains("2 finished items were restored"));
  // The graph: a box per stage, data edges solid, the phase edge dashed.
  CHECK_THAT(html, Catch::Contains(">mil_uni</text>"));
  CHECK_THAT(html, Catch::Contains("stroke-dasharray=\"5 4\" marker-end"));
  // Each CSV row one cell, its numbers as in the CSV; the best of each metric row marked, in-domain first.
  CHECK_THAT(html, Catch::Contains("data-setting=\"in-domain\" data-metric=\"auroc\" data-mean=\"0.81234\" data-sd=\"0.05\" "
                                   "data-ci-low=\"0.7\" data-ci-high=\"0.9\">0.812 ± 0.050 [0.700, 0.900]</td>"));
  CHECK_THAT(html, Catch::Contains("<td class=\"num best\" data-encoder=\"ctranspath\" data-source=\"mil_ctp\" data-method=\"gated_attention\" "
                                   "data-setting=\"in-domain\" data-metric=\"auroc\" data-mean=\"0.85\" data-sd=\"0.04\">0.850 ± 0.040 ★</td>"));
  CHECK_THAT(html, Catch::Contains("<td class=\"num\" data-encoder=\"ctranspath (reference)\" data-source=\"reference\" "
                                   "data-method=\"gated_attention\" data-setting=\"in-domain\" data-metric=\"auroc\" data-mean=\"0.95\">0.950</td>"));
  CHECK(html.find("data-setting=\"in-domain\"") < html.find("data-setting=\"external (ensemble)\""));
  CHECK_THAT(html, Catch::Contains("0.900 [0.800, 0.950] ★"));  // a row of one encoder: it is the best
  CHECK_THAT(html, Catch::Contains("<td>–</td>"));               // ctranspath has no external value
  // The MIL stage: ROC curves with AUROC and CI, a confusion matrix counted from the predictions, the folds.
  CHECK_THAT(html, Catch::Contains(">in-domain, pooled folds: AUROC 0.750 [0.500, 1.000]</text>"));
  CHECK_THAT(html, Catch::Contains(">gated_attention on uni: AUROC 0.750 [0.500, 1.000]</text>"));  // the overlay
  CHECK_THAT(html, Catch::Contains("true 0, predicted 1: 1"));
  CHECK_THAT(html, Catch::Contains("true 1, predicted 1: 2"));
  CHECK_THAT(html, Catch::Contains("<td class=\"num\">2 / 1 / 2</td><td class=\"num\">4/5</td>"));
  // What it lacks is said, not skipped: the finetuning curve and the trace.
  CHECK_THAT(html, Catch::Contains("finetune/evaluation_curve.csv: not written, so no finetuning curve of stage &#39;finetune&#39;"));
  CHECK_THAT(html, Catch::Contains("trace.json: no trace in the run folder"));
  CHECK(outcome.missing.size() == 2);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("http://") == html.find("http://www.w3.org"));  // only SVG namespaces, no network address
}

TEST_CASE("a run that did not finish still gets a report saying what is missing", "[report]") {
  const auto dir = fresh_folder("report-partial");
  write(dir / "resolved_graph.toml", kGraph);
  write(dir / "run_started.json", R"({"pid": 4242, "host": "node7"})");
  write(dir / "mil_uni" / "metrics.json", "{ truncated");
  const auto outcome = histoflow::write_report(dir);
  const std::string html = read(outcome.file);
  CHECK_THAT(html, Catch::Contains("This run did not finish: <code>run_summary.json</code> is missing (it started as process 4242 on node7)"));
  CHECK_THAT(html, Catch::Contains("mil_uni/metrics.json: not valid JSON"));
  CHECK_THAT(html, Catch::Contains("comparison.csv: not written, so no comparison table of stage &#39;compare&#39;"));
  CHECK_THAT(html, Catch::Contains("mil_uni/predictions.csv: not written"));
  CHECK(outcome.missing.size() >= 5);
}

TEST_CASE("a folder that is not a run folder is refused with the reason", "[report]") {
  const auto dir = fresh_folder("report-empty");
  CHECK_THROWS_WITH(histoflow::write_report(dir), Catch::Contains("is not a run folder"));
  CHECK_THROWS_WITH(histoflow::write_report(dir / "absent"), Catch::Contains("is not a folder"));
  CHECK_FALSE(std::filesystem::exists(dir / "report.html"));
}

TEST_CASE("comparison: an empty metric shows n/a without a value; one encoder from two stages stays two columns", "[report]") {
  const auto dir = fresh_folder("report-comparison");
  write(dir / "resolved_graph.toml", "[stage.compare]\nuse = \"comparison_table\"\ncsv = \"table.csv\"\n");
  write(dir / "table.csv",
        "encoder,method,setting,metric,mean,sd,ci_low,ci_high,source\n"
        "uni,abmil,external (ensemble),auroc,,,,,mil_a\n"
        "uni,abmil,in-domain,auroc,0.7,0.1,,,mil_a\n"
        "uni,abmil,in-domain,auroc,0.9,0.1,,,mil_b\n");
  const std::string html = read(histoflow::write_report(dir).file);
  CHECK_THAT(html, Catch::Contains("<th>uni (mil_a)</th><th>uni (mil_b)</th>"));
  CHECK_THAT(html, Catch::Contains("data-source=\"mil_a\" data-method=\"abmil\" data-setting=\"external (ensemble)\" "
                                   "data-metric=\"auroc\">n/a</td>"));
  CHECK_THAT(html, Catch::Contains("<td class=\"num\" data-encoder=\"uni\" data-source=\"mil_a\" data-method=\"abmil\" "
                                   "data-setting=\"in-domain\" data-metric=\"auroc\" data-mean=\"0.7\" data-sd=\"0.1\">0.700 ± 0.100</td>"));
  CHECK_THAT(html, Catch::Contains("data-mean=\"0.9\" data-sd=\"0.1\">0.900 ± 0.100 ★</td>"));
}

TEST_CASE("a summary older than the run's graph is an earlier run's: the latest run did not finish", "[report]") {
  const auto dir = finished_run();
  std::filesystem::last_write_time(dir / "resolved_graph.toml",
                                   std::filesystem::last_write_time(dir / "run_summary.json") + std::chrono::seconds(5));
  const auto outcome = histoflow::write_report(dir);
  const std::string html = read(outcome.file);
  CHECK_THAT(html, Catch::Contains("the summary below is an earlier run's"));
  CHECK_THAT(html, Catch::Contains("<span class=\"status unfinished\">did not finish"));
  CHECK_THAT(outcome.missing.front(), Catch::Contains("older than resolved_graph.toml"));
}

TEST_CASE("damaged files cost their part of the page, not the page", "[report]") {
  const auto dir = fresh_folder("report-damaged");
  write(dir / "resolved_graph.toml", "[stage.knn]\nuse = \"knn_eval\"\n[stage.mil]\nuse = \"mil_cv\"\n");
  SECTION("a summary that is not an object") {
    write(dir / "run_summary.json", "[]");
    CHECK_THAT(read(histoflow::write_report(dir).file), Catch::Contains("run_summary.json: not a JSON object"));
  }
  SECTION("a summary without the usual keys, stages of odd shapes") {
    write(dir / "run_summary.json", R"({"status": "completed", "stages": [{"id": "knn", "calls": "many"}], "errors": {}})");
    const std::string html = read(histoflow::write_report(dir).file);
    CHECK_THAT(html, Catch::Contains("<td>knn</td><td>knn_eval</td><td class=\"num\">–</td>"));
    CHECK_THAT(html, Catch::Contains("No errors."));
  }
  write(dir / "knn" / "uni" / "metrics.json", R"({"encoder": "uni", "methods": {"20-NN": {"accuracy": 0.5,
    "confusion_matrix": {"csv": "confusion.csv"}}}})");
  write(dir / "knn" / "uni" / "confusion.csv", "true\\predicted,a,b\na,1,x\nb,0,2\n");
  write(dir / "mil" / "metrics.json", R"({"method": "abmil", "encoder": "uni", "classes": [0, 1], "in-domain": 3, "training": "no"})");
  write(dir / "mil" / "predictions.csv", "setting,fold,bag,patient,slides,label,predicted,score_0,score_1\nin-domain,0,s1,p,s1,0,0,nan,nan\n");
  const auto outcome = histoflow::write_report(dir);
  const std::string html = read(outcome.file);
  CHECK_THAT(html, Catch::Contains("<td>uni</td><td>20-NN</td><td class=\"num\">0.500</td><td class=\"num\">–</td>"));
  bool noted = false;
  for (const auto& m : outcome.missing) noted = noted || m.find("knn/uni/confusion.csv: line 2: 'x' is not a count") != std::string::npos;
  CHECK(noted);
  CHECK_THAT(html, Catch::Contains("abmil on uni"));  // the MIL stage is drawn from what is readable
}
