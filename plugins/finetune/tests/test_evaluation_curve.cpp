// The finetuning run's accuracy curve: what a resumed run keeps of evaluation.jsonl, and the files it writes.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "evaluation_curve.hpp"
#include "support/fresh_folder.hpp"

using namespace histoflow::finetune;

namespace {

EvaluationPoint point(std::int64_t iteration, double knn) {
  EvaluationPoint p;
  p.iteration = iteration;
  p.training_seconds = 10.0 * static_cast<double>(iteration);
  p.knn_balanced_accuracy = knn;
  p.linear_balanced_accuracy = knn / 2;
  p.seconds = 1;
  return p;
}

std::string read(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("a resumed run keeps the evaluations of its settings up to its checkpoint", "[finetune][evaluation]") {
  const auto folder = histoflow::testing::fresh_folder("evaluation-curve");
  {
    EvaluationCurve other(folder, "settings B");
    other.add(point(0, 0.9));
  }
  {
    EvaluationCurve curve(folder, "settings A");
    REQUIRE(curve.restore(100) == 1);  // B's point is kept in the file, not in the curve
    curve.add(point(0, 0.5));
    curve.add(point(2, 0.7));
    curve.add(point(4, 0.6));
  }
  EvaluationCurve resumed(folder, "settings A");
  CHECK(resumed.restore(3) == 1);  // the checkpoint is at step 3: the point of step 4 goes
  REQUIRE(resumed.points().size() == 2);
  CHECK(resumed.has(2));
  CHECK_FALSE(resumed.has(4));
  REQUIRE(resumed.best() != nullptr);
  CHECK(resumed.best()->iteration == 2);
  CHECK(resumed.evaluation_seconds() == 2);

  resumed.add(point(4, 0.8));
  CHECK(resumed.best()->iteration == 4);
  const std::string jsonl = read(resumed.jsonl());
  CHECK(jsonl.find("settings B") != std::string::npos);  // another setup's line survives the rewrite
  CHECK(read(resumed.csv()) ==
        "iteration,training_seconds,elapsed_seconds,knn_balanced_accuracy,linear_probe_balanced_accuracy,evaluation_seconds\n"
        "0,0,0,0.5,0.25,1\n2,20,0,0.7,0.35,1\n4,40,0,0.8,0.4,1\n");
  CHECK(read(resumed.png()).substr(1, 3) == "PNG");
}

TEST_CASE("a damaged evaluation record is named by file and line", "[finetune][evaluation]") {
  const auto folder = histoflow::testing::fresh_folder("evaluation-curve-bad");
  std::ofstream(folder / "evaluation.jsonl") << "{\"iteration\": 0}\n";
  EvaluationCurve curve(folder, "settings");
  CHECK_THROWS_WITH(curve.restore(10), Catch::Contains("evaluation.jsonl:1: not an evaluation record"));
}
