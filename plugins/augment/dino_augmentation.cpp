#include "histoflow/augment/dino_augmentation.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

#include "color_ops.hpp"
#include "gaussian_blur.hpp"
#include "sample_random.hpp"

namespace histoflow::augment {

CropDraw draw_crop(const MultiCropRecipe& recipe, int image_height, int image_width, std::int64_t index,
                   std::uint64_t seed, std::uint64_t sample) {
  SampleRandom random(seed, sample, static_cast<std::uint64_t>(index));
  const bool global = index < recipe.layout.global_number;
  CropDraw d;
  // In torchvision's order: geometry, then colour, then the crop's extras.
  d.box = random_resized_crop_box(image_height, image_width, global ? recipe.global_scale : recipe.local_scale, recipe.ratio,
                                  [&] { return random.uniform(); });
  d.flip_horizontal = recipe.horizontal_flip && random.chance(0.5);
  d.flip_vertical = recipe.vertical_flip && random.chance(0.5);
  d.jitter = random.chance(recipe.jitter_probability);
  if (d.jitter) {
    std::iota(d.order.begin(), d.order.end(), 0);
    for (int i = 3; i > 0; --i) std::swap(d.order[static_cast<std::size_t>(i)], d.order[static_cast<std::size_t>(random.below(i + 1))]);
    d.factors = {random.uniform(std::max(0.0, 1 - recipe.brightness), 1 + recipe.brightness),
                 random.uniform(std::max(0.0, 1 - recipe.contrast), 1 + recipe.contrast),
                 random.uniform(std::max(0.0, 1 - recipe.saturation), 1 + recipe.saturation),
                 random.uniform(-recipe.hue, recipe.hue)};
  }
  d.grayscale = random.chance(recipe.grayscale_probability);
  const double blur_p = recipe.blur_probability[static_cast<std::size_t>(global ? index : 2)];
  if (random.chance(blur_p)) d.blur_sigma = random.uniform(recipe.blur_sigma_min, recipe.blur_sigma_max);
  d.solarize = index == 1 && random.chance(recipe.solarize_probability);
  return d;
}

RgbImage render_crop(const RgbImage& image, const CropDraw& draw, std::int64_t size, const MultiCropRecipe& recipe) {
  RgbImage crop = resized_crop(image, draw.box, static_cast<int>(size));
  if (draw.flip_horizontal) flip_horizontal(crop);
  if (draw.flip_vertical) flip_vertical(crop);
  if (draw.jitter) {
    // ColorJitter leaves out an operation whose strength is 0 (its factor range is then a single point).
    const double strength[4] = {recipe.brightness, recipe.contrast, recipe.saturation, recipe.hue};
    for (const int op : draw.order)
      if (strength[op] > 0) adjust_color(crop, op, draw.factors[static_cast<std::size_t>(op)]);
  }
  if (draw.grayscale) to_grayscale(crop);
  if (draw.blur_sigma) gaussian_blur(crop, recipe.blur_kernel, *draw.blur_sigma);
  if (draw.solarize) solarize(crop, recipe.solarize_threshold);
  return crop;
}

void multi_crop(const RgbImage& image, const MultiCropRecipe& recipe, std::uint64_t seed, std::uint64_t sample, std::uint8_t* out) {
  if (image.width <= 0 || image.height <= 0) throw std::invalid_argument("cannot crop an empty image");
  const CropsLayout& layout = recipe.layout;
  for (std::int64_t i = 0; i < layout.global_number + layout.local_number; ++i) {
    const std::int64_t size = i < layout.global_number ? layout.global_size : layout.local_size;
    const RgbImage crop = render_crop(image, draw_crop(recipe, image.height, image.width, i, seed, sample), size, recipe);
    std::memcpy(out + layout.offset(i), crop.pixels.data(), crop.pixels.size());
  }
}

}  // namespace histoflow::augment
