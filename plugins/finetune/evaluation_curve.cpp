#include "evaluation_curve.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/csv.hpp"
#include "histoflow/evaluation_common/svg_raster.hpp"
#include "histoflow/svg_plot.hpp"

namespace histoflow::finetune {
namespace {

nlohmann::json to_json(const EvaluationPoint& p) {
  return {{"iteration", p.iteration},
          {"training_seconds", p.training_seconds},
          {"elapsed_seconds", p.elapsed_seconds},
          {"knn_balanced_accuracy", p.knn_balanced_accuracy},
          {"linear_balanced_accuracy", p.linear_balanced_accuracy},
          {"seconds", p.seconds},
          {"setup", p.setup}};
}

EvaluationPoint from_json(const nlohmann::json& j) {
  EvaluationPoint p;
  p.iteration = j.at("iteration").get<std::int64_t>();
  p.training_seconds = j.at("training_seconds").get<double>();
  p.elapsed_seconds = j.at("elapsed_seconds").get<double>();
  p.knn_balanced_accuracy = j.at("knn_balanced_accuracy").get<double>();
  p.linear_balanced_accuracy = j.at("linear_balanced_accuracy").get<double>();
  p.seconds = j.at("seconds").get<double>();
  p.setup = j.at("setup").get<std::string>();
  return p;
}

std::string number(double value) {
  std::ostringstream out;
  out.precision(6);
  out << value;
  return out.str();
}

// Two panels side by side: balanced accuracy against iteration, and against training time (the report's figures).
std::string figure(const std::vector<EvaluationPoint>& points) {
  svg::TrainingCurves curves;
  for (const auto& p : points) {
    curves.iteration.push_back(static_cast<double>(p.iteration));
    curves.training_seconds.push_back(p.training_seconds);
    curves.knn_accuracy.push_back(p.knn_balanced_accuracy);
    curves.linear_accuracy.push_back(p.linear_balanced_accuracy >= 0 ? p.linear_balanced_accuracy : std::nan(""));
  }
  const auto [by_iteration, by_time] = svg::training_curve_figures(curves);
  return svg::side_by_side({by_iteration, by_time});
}

}  // namespace

EvaluationCurve::EvaluationCurve(std::filesystem::path folder, std::string setup) : folder_(std::move(folder)), setup_(std::move(setup)) {}

std::size_t EvaluationCurve::restore(std::int64_t iteration) {
  points_.clear();
  other_setups_.clear();
  std::ifstream in(jsonl());
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    EvaluationPoint point;
    try {
      point = from_json(nlohmann::json::parse(line));
    } catch (const std::exception& e) {
      throw std::runtime_error(jsonl().string() + ":" + std::to_string(line_number) + ": not an evaluation record (" + e.what() + ")");
    }
    if (point.setup != setup_)
      other_setups_.push_back(line);
    else if (point.iteration <= iteration && !has(point.iteration))
      points_.push_back(std::move(point));
  }
  return other_setups_.size();
}

bool EvaluationCurve::has(std::int64_t iteration) const {
  return std::any_of(points_.begin(), points_.end(), [&](const auto& p) { return p.iteration == iteration; });
}

const EvaluationPoint* EvaluationCurve::best() const {
  const EvaluationPoint* best = nullptr;
  for (const auto& p : points_)
    if (!best || p.knn_balanced_accuracy > best->knn_balanced_accuracy) best = &p;
  return best;
}

double EvaluationCurve::evaluation_seconds() const {
  double total = 0;
  for (const auto& p : points_) total += p.seconds;
  return total;
}

void EvaluationCurve::add(EvaluationPoint point) {
  point.setup = setup_;
  points_.push_back(std::move(point));
  std::string lines;
  for (const auto& other : other_setups_) lines += other + "\n";
  for (const auto& p : points_) lines += to_json(p).dump() + "\n";
  write_file_atomically(jsonl(), lines);

  std::string table = csv_row({"iteration", "training_seconds", "elapsed_seconds", "knn_balanced_accuracy",
                                "linear_probe_balanced_accuracy", "evaluation_seconds"});
  for (const auto& p : points_)
    table += csv_row({std::to_string(p.iteration), number(p.training_seconds), number(p.elapsed_seconds), number(p.knn_balanced_accuracy),
                      p.linear_balanced_accuracy >= 0 ? number(p.linear_balanced_accuracy) : "", number(p.seconds)});
  write_file_atomically(csv(), table);
  evaluation_common::write_svg_as_png(png(), figure(points_));
}

}  // namespace histoflow::finetune
