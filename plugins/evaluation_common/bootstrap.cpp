#include "histoflow/evaluation_common/bootstrap.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace histoflow::evaluation_common {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) throw std::invalid_argument("percentile of an empty set");
  std::sort(values.begin(), values.end());
  const double position = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return values[below] + (values[above] - values[below]) * fraction;
}

ConfidenceInterval bootstrap_interval(std::size_t n, const std::function<double(const std::vector<std::size_t>&)>& metric,
                                      int resamples, std::uint64_t seed, double confidence) {
  if (n == 0) throw std::invalid_argument("bootstrap of an empty set");
  if (!(confidence > 0 && confidence < 1))
    throw std::invalid_argument("bootstrap confidence must be in (0, 1), got " + std::to_string(confidence));
  // mt19937_64 and our own index draw (not std::uniform_int_distribution, whose algorithm is
  // implementation-defined) keep intervals identical across standard libraries.
  std::mt19937_64 random(seed);
  std::vector<double> values;
  ConfidenceInterval out;
  std::vector<std::size_t> indices(n);
  for (int r = 0; r < resamples; ++r) {
    for (auto& i : indices) i = static_cast<std::size_t>(random() % n);
    try {
      const double v = metric(indices);
      if (std::isnan(v)) throw std::invalid_argument("undefined");
      values.push_back(v);
    } catch (const std::invalid_argument&) {
      ++out.skipped;
    }
  }
  out.used = static_cast<int>(values.size());
  if (values.empty()) {
    out.low = out.high = std::nan("");
    return out;
  }
  const double tail = (1.0 - confidence) / 2.0 * 100.0;
  out.low = percentile(values, tail);
  out.high = percentile(values, 100.0 - tail);
  return out;
}

}  // namespace histoflow::evaluation_common
