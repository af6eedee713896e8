#include "evaluation_curve.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "histoflow/atomic_file.hpp"
#include "histoflow/csv.hpp"
#include "histoflow/evaluation_common/line_plot.hpp"

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

// Two panels side by side: accuracy against iteration, and against training hours.
RgbImage render(const std::vector<EvaluationPoint>& points) {
  using namespace evaluation_common;
  const bool linear = std::any_of(points.begin(), points.end(), [](const auto& p) { return p.linear_balanced_accuracy >= 0; });
  const auto panel = [&](auto x_of, double x_max) {
    PlotFrame frame;
    frame.x_max = std::max(x_max, 1e-9);
    frame.x_grid = nice_grid_spacing(frame.x_max);
    frame.y_grid = 0.1;
    PlotCurve knn{{}, {}, palette_colour(0), 2, 3}, probe{{}, {}, palette_colour(1), 2, 3};
    for (const auto& p : points) {
      knn.x.push_back(x_of(p));
      knn.y.push_back(p.knn_balanced_accuracy);
      if (p.linear_balanced_accuracy >= 0) probe.x.push_back(x_of(p)), probe.y.push_back(p.linear_balanced_accuracy);
    }
    std::vector<PlotCurve> curves{knn};
    if (linear) curves.push_back(probe);
    return plot_curves(curves, frame, 480, 480);
  };
  double last_iteration = 0, last_hours = 0;
  for (const auto& p : points)
    last_iteration = std::max(last_iteration, static_cast<double>(p.iteration)), last_hours = std::max(last_hours, p.training_seconds / 3600);
  const RgbImage left = panel([](const EvaluationPoint& p) { return static_cast<double>(p.iteration); }, last_iteration);
  const RgbImage right = panel([](const EvaluationPoint& p) { return p.training_seconds / 3600; }, last_hours);
  RgbImage both{left.width + right.width, left.height, std::vector<std::uint8_t>(static_cast<std::size_t>(left.width + right.width) * left.height * 3)};
  for (int y = 0; y < left.height; ++y) {
    const auto row = static_cast<std::size_t>(y);
    std::copy_n(left.pixels.begin() + static_cast<std::ptrdiff_t>(row * left.width * 3), left.width * 3,
                both.pixels.begin() + static_cast<std::ptrdiff_t>(row * both.width * 3));
    std::copy_n(right.pixels.begin() + static_cast<std::ptrdiff_t>(row * right.width * 3), right.width * 3,
                both.pixels.begin() + static_cast<std::ptrdiff_t>((row * both.width + left.width) * 3));
  }
  return both;
}

}  // namespace

double nice_grid_spacing(double range, int lines) {
  if (!(range > 0)) return 0;
  const double raw = range / std::max(lines, 1);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double step : {1.0, 2.0, 5.0})
    if (step * power >= raw) return step * power;
  return 10 * power;
}

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
  write_png(png(), render(points_));
}

}  // namespace histoflow::finetune
