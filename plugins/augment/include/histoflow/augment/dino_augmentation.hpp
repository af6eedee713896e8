#pragma once
// DINOv2's DataAugmentationDINO (dinov2/data/augmentations.py, with the study fork's vertical flip): for one
// image, two global crops and N local crops, each a random resized crop (bicubic) with flips, then colour
// jitter, grayscale, blur and (second global crop only) solarisation. The operations are Pillow/torchvision-
// exact (pil_resample, color_ops, gaussian_blur); the random draws come from SampleRandom(seed, sample, crop),
// so crops depend on nothing but the seed and the sample's index.
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "histoflow/augment/crops_kind.hpp"
#include "histoflow/image.hpp"
#include "histoflow/augment/pil_resample.hpp"
#include "histoflow/augment/random_resized_crop.hpp"

namespace histoflow::augment {

struct MultiCropRecipe {
  CropsLayout layout;  // 2 global crops of 224, 8 local crops of 98 (the study's sizes for patch size 14)
  ScaleRange global_scale{0.32, 1.0}, local_scale{0.05, 0.32}, ratio{3.0 / 4.0, 4.0 / 3.0};
  bool horizontal_flip = true;  // p = 0.5
  bool vertical_flip = true;    // p = 0.5: the study's fork adds it for histology
  double jitter_probability = 0.8;
  double brightness = 0.4, contrast = 0.4, saturation = 0.2, hue = 0.1;
  double grayscale_probability = 0.2;
  // Blur probabilities for global crop 1, global crop 2 and local crops AS THE OFFICIAL CODE RUNS THEM: its
  // GaussianBlur(p) wraps RandomApply(p = 1 - p), so the nominal 1.0 / 0.1 / 0.5 apply as 0.0 / 0.9 / 0.5.
  std::array<double, 3> blur_probability{0.0, 0.9, 0.5};
  double blur_sigma_min = 0.1, blur_sigma_max = 2.0;
  int blur_kernel = 9;
  double solarize_probability = 0.2;  // global crop 2 only
  int solarize_threshold = 128;
};

// Everything random about one crop, drawn before any pixel is touched.
struct CropDraw {
  CropBox box;
  bool flip_horizontal = false, flip_vertical = false;
  bool jitter = false;
  std::array<int, 4> order{0, 1, 2, 3};     // ColorJitter's random permutation of its four operations
  std::array<double, 4> factors{1, 1, 1, 0};  // brightness, contrast, saturation, hue
  bool grayscale = false;
  std::optional<double> blur_sigma;
  bool solarize = false;
};

// Crop `index` of a sample: 0 and 1 are the global crops, 2.. the local ones.
CropDraw draw_crop(const MultiCropRecipe& recipe, int image_height, int image_width, std::int64_t index,
                   std::uint64_t seed, std::uint64_t sample);
// The crop's pixels (size x size) from the image and its draw.
RgbImage render_crop(const RgbImage& image, const CropDraw& draw, std::int64_t size, const MultiCropRecipe& recipe);

// All crops of one sample into `out` (recipe.layout.total_bytes() bytes, the ssl_crops layout).
void multi_crop(const RgbImage& image, const MultiCropRecipe& recipe, std::uint64_t seed, std::uint64_t sample, std::uint8_t* out);

}  // namespace histoflow::augment
