#pragma once
// The accuracy-over-training curve of a finetuning run: one point per evaluation of the teacher, kept in
// evaluation.jsonl (what a resumed run reads back) and rendered as evaluation_curve.csv and evaluation_curve.png
// (balanced accuracy against iteration, left, and against training time, right: svg::training_curve_figures, as
// the run report draws them), all written atomically.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace histoflow::finetune {

struct EvaluationPoint {
  std::int64_t iteration = 0;
  double training_seconds = 0;  // step and data time before this point, earlier runs' included; no evaluations
  double elapsed_seconds = 0;   // training_seconds plus every evaluation before this one: the run's wall time
  double knn_balanced_accuracy = 0;
  double linear_balanced_accuracy = -1;  // -1: no linear probe
  double seconds = 0;                    // this evaluation's own time
  std::string setup;                     // the evaluation's settings; a resumed run keeps only points of its own
};

class EvaluationCurve {
 public:
  EvaluationCurve(std::filesystem::path folder, std::string setup);

  // Reads evaluation.jsonl back: the points of this setup up to `iteration` (later ones belong to steps the
  // checkpoint does not have). Returns how many points of another setup were left out.
  std::size_t restore(std::int64_t iteration);
  bool has(std::int64_t iteration) const;
  // Appends a point and rewrites the three files.
  void add(EvaluationPoint point);
  // The point with the highest k-NN balanced accuracy (the first of equals); nullptr when there is none.
  const EvaluationPoint* best() const;
  double evaluation_seconds() const;  // every point's own time
  const std::vector<EvaluationPoint>& points() const { return points_; }

  std::filesystem::path jsonl() const { return folder_ / "evaluation.jsonl"; }
  std::filesystem::path csv() const { return folder_ / "evaluation_curve.csv"; }
  std::filesystem::path png() const { return folder_ / "evaluation_curve.png"; }

 private:
  std::filesystem::path folder_;
  std::string setup_;
  std::vector<EvaluationPoint> points_;
  std::vector<std::string> other_setups_;  // lines of another setup, kept in evaluation.jsonl as they were
};

}  // namespace histoflow::finetune
