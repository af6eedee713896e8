#pragma once
// Colour operations exactly as torchvision applies them to PIL images (ColorJitter, RandomGrayscale,
// RandomSolarize in DINOv2's augmentations), with Pillow's arithmetic: ImageEnhance's blend in single precision
// truncated to 8 bits, ITU-R 601-2 luma in 16-bit fixed point, Pillow's RGB <-> HSV conversions, and
// torchvision's hue shift by uint8(factor * 255) modulo 256. Outputs are byte-identical.
#include "histoflow/image.hpp"

namespace histoflow::augment {

void adjust_brightness(RgbImage& image, double factor);  // blend with black
void adjust_contrast(RgbImage& image, double factor);    // blend with the mean luma (rounded)
void adjust_saturation(RgbImage& image, double factor);  // blend with the luma image
void adjust_hue(RgbImage& image, double factor);         // factor in [-0.5, 0.5]
void to_grayscale(RgbImage& image);                      // luma on the three channels
void solarize(RgbImage& image, int threshold);           // v >= threshold becomes 255 - v

// The four ColorJitter operations by index (0 brightness, 1 contrast, 2 saturation, 3 hue).
void adjust_color(RgbImage& image, int operation, double factor);

}  // namespace histoflow::augment
