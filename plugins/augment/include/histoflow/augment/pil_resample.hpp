#pragma once
// Crop and resize exactly as Pillow does for torchvision's RandomResizedCrop on PIL images (DINOv2's dataset
// hands the augmentations PIL images): Image.crop, then Image.resize with BICUBIC, i.e. Pillow's separable
// antialiased convolution (Resample.c: cubic a = -0.5, support widened by the downscale factor, coefficients in
// 22-bit fixed point, a horizontal pass into 8-bit rows, then a vertical pass). Outputs are byte-identical.
#include "histoflow/image.hpp"

namespace histoflow::augment {

// A region of an image in pixels; it must lie inside the image.
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox&) const = default;
};

RgbImage resize_bicubic(const RgbImage& source, int width, int height);
// torchvision.transforms.functional.resized_crop(img, top, left, height, width, [size, size], BICUBIC).
RgbImage resized_crop(const RgbImage& source, const CropBox& box, int size);

void flip_horizontal(RgbImage& image);
void flip_vertical(RgbImage& image);

}  // namespace histoflow::augment
