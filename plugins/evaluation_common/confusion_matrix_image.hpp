#pragma once
// A confusion matrix as a PNG heat map: one square cell per (true row, predicted column), shaded by the row's
// fraction (recall along the diagonal; white 0 -> dark blue 1), with the count written in the cell. Rows and
// columns follow the class order of the matrix (the same order as its CSV). Written atomically.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "classification_metrics.hpp"

namespace histoflow::eval {

// RGB8 pixels, row-major, width * height * 3.
struct RgbCanvas {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;
};

RgbCanvas render_confusion_matrix(const ConfusionMatrix& matrix, int cell_pixels = 40);

// The PNG bytes of an RGB8 image (zlib deflate, no filtering).
std::string encode_png(const RgbCanvas& image);

void write_confusion_matrix_png(const std::filesystem::path& file, const ConfusionMatrix& matrix, int cell_pixels = 40);

}  // namespace histoflow::eval
