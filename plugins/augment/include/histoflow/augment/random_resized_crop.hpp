#pragma once
// torchvision's RandomResizedCrop.get_params: up to ten tries of an area fraction in `scale` and a log-uniform
// aspect ratio in `ratio` (in float32, as torch draws them), else the centre crop of the nearest allowed ratio.
#include <functional>

#include "histoflow/augment/pil_resample.hpp"

namespace histoflow::augment {

struct ScaleRange {
  double low = 0.08, high = 1.0;
};

// `draw` gives uniform [0, 1) numbers, consumed in torchvision's order: per try the area, the ratio, and (when the
// box fits) the top and left offsets.
CropBox random_resized_crop_box(int height, int width, ScaleRange scale, ScaleRange ratio, const std::function<double()>& draw);

}  // namespace histoflow::augment
