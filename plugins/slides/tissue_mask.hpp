#pragma once
// Tissue detection on a low-resolution image: saturation, Otsu's threshold, morphological clean-up,
// removal of small pieces, filled holes. Glass and scanner padding are unsaturated; stained tissue is not.
#include <cstdint>
#include <vector>

#include "histoflow/slides/image.hpp"

namespace histoflow::slides {

struct TissueMaskOptions {
  int min_saturation = 20;       // never call pixels tissue below this saturation (0..255), whatever Otsu says
  int morphology_radius = 2;     // closing then opening with a (2r+1)^2 square; 0: none
  std::int64_t min_piece_pixels = 16;  // connected pieces smaller than this are dropped
  bool fill_holes = true;
};

struct TissueMaskResult {
  Mask mask;
  int threshold = 0;  // the saturation threshold used
};

std::vector<std::uint8_t> saturation(const RgbImage& image);  // HSV saturation scaled to 0..255
int otsu_threshold(const std::vector<std::uint8_t>& values);   // maximises between-class variance
Mask dilate(const Mask& mask, int radius);
Mask erode(const Mask& mask, int radius);
void remove_small_pieces(Mask& mask, std::int64_t min_pixels);  // 8-connected pieces
void fill_holes(Mask& mask);                                     // background not reachable from the border
TissueMaskResult tissue_mask(const RgbImage& image, const TissueMaskOptions& options);

// Outer contours of the mask's pieces along pixel edges, as closed rings of corner coordinates.
std::vector<std::vector<std::pair<int, int>>> trace_contours(const Mask& mask);

}  // namespace histoflow::slides
