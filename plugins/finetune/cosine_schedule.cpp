#include "cosine_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace histoflow::finetune {

CosineSchedule::CosineSchedule(double base, double final_value, std::int64_t total_iters, std::int64_t warmup_iters,
                               double start_warmup, std::int64_t freeze_iters)
    : final_(final_value) {
  if (total_iters < 0 || warmup_iters < 0 || freeze_iters < 0 || warmup_iters + freeze_iters > total_iters)
    throw std::invalid_argument("a schedule's warm-up and frozen iterations must fit in its total");
  values_.assign(static_cast<std::size_t>(freeze_iters), 0.0);
  // numpy.linspace: start + i * step, the last value exactly `base`.
  const double step = warmup_iters > 1 ? (base - start_warmup) / static_cast<double>(warmup_iters - 1) : 0.0;
  for (std::int64_t i = 0; i < warmup_iters; ++i)
    values_.push_back(i + 1 == warmup_iters ? base : static_cast<double>(i) * step + start_warmup);
  const std::int64_t cosine = total_iters - warmup_iters - freeze_iters;
  for (std::int64_t i = 0; i < cosine; ++i)
    values_.push_back(final_value + 0.5 * (base - final_value) * (1.0 + std::cos(std::numbers::pi * static_cast<double>(i) / static_cast<double>(cosine))));
}

double CosineSchedule::operator[](std::int64_t iteration) const {
  if (iteration < 0) throw std::out_of_range("negative schedule iteration");
  if (iteration >= static_cast<std::int64_t>(values_.size())) return final_;
  return values_[static_cast<std::size_t>(iteration)];
}

void CosineSchedule::zero_first(std::int64_t iterations) {
  std::fill_n(values_.begin(), std::min<std::size_t>(values_.size(), static_cast<std::size_t>(std::max<std::int64_t>(iterations, 0))), 0.0);
}

}  // namespace histoflow::finetune
