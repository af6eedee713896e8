#include "histoflow/augment/random_resized_crop.hpp"

#include <algorithm>
#include <cmath>

namespace histoflow::augment {

CropBox random_resized_crop_box(int height, int width, ScaleRange scale, ScaleRange ratio, const std::function<double()>& draw) {
  const double area = static_cast<double>(height) * width;
  const double log_low = std::log(static_cast<float>(ratio.low)), log_high = std::log(static_cast<float>(ratio.high));
  const auto as_float32 = [](double v) { return static_cast<double>(static_cast<float>(v)); };
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * as_float32(scale.low + draw() * (scale.high - scale.low));
    const double aspect = std::exp(static_cast<float>(log_low + draw() * (log_high - log_low)));
    // Python's round(): half to even.
    const int w = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect)));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int top = static_cast<int>(draw() * (height - h + 1));
      const int left = static_cast<int>(draw() * (width - w + 1));
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < std::min(ratio.low, ratio.high)) {
    h = static_cast<int>(std::nearbyint(w / std::min(ratio.low, ratio.high)));
  } else if (in_ratio > std::max(ratio.low, ratio.high)) {
    w = static_cast<int>(std::nearbyint(h * std::max(ratio.low, ratio.high)));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

}  // namespace histoflow::augment
