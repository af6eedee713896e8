#pragma once
// torchvision's gaussian_blur as DINOv2's GaussianBlur applies it to a PIL image: the image goes to a uint8
// tensor, is reflect-padded by kernel_size / 2, convolved in float32 with the normalised Gaussian kernel
// (exp(-x^2 / 2 sigma^2) at x = -(k-1)/2 .. (k-1)/2, the 2-D kernel being the outer product), rounded half to
// even and cast back. Computed here as two 1-D passes in float: equal to torchvision's but for values within
// float rounding of a .5 boundary (one level, rarely; the parity test bounds how rarely).
#include "histoflow/image.hpp"

namespace histoflow::augment {

// kernel_size odd and smaller than twice each image side (reflect padding), sigma > 0.
void gaussian_blur(RgbImage& image, int kernel_size, double sigma);

}  // namespace histoflow::augment
