#pragma once
// DINOv2's CosineScheduler (dinov2/utils/utils.py): frozen iterations at 0, a linear warm-up from
// start_warmup to base (numpy.linspace, end included), then a cosine from base to final over the remaining
// iterations; past total_iters, the final value.
#include <cstdint>
#include <vector>

namespace histoflow::finetune {

class CosineSchedule {
 public:
  CosineSchedule(double base, double final_value, std::int64_t total_iters, std::int64_t warmup_iters = 0,
                 double start_warmup = 0.0, std::int64_t freeze_iters = 0);
  double operator[](std::int64_t iteration) const;
  // Sets the first `iterations` values to zero (the last layer's frozen epochs).
  void zero_first(std::int64_t iterations);

 private:
  std::vector<double> values_;
  double final_;
};

}  // namespace histoflow::finetune
