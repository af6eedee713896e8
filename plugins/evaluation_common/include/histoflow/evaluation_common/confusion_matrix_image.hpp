#pragma once
// A confusion matrix as a PNG heat map: one square cell per (true row, predicted column), shaded by the row's
// fraction (recall along the diagonal; white 0 -> dark blue 1), with the count written in the cell. Rows and
// columns follow the class order of the matrix (the same order as its CSV). Written atomically.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "histoflow/evaluation_common/classification_metrics.hpp"
#include "histoflow/image.hpp"
#include "histoflow/png.hpp"  // encode_png

namespace histoflow::evaluation_common {

RgbImage render_confusion_matrix(const ConfusionMatrix& matrix, int cell_pixels = 40);

void write_confusion_matrix_png(const std::filesystem::path& file, const ConfusionMatrix& matrix, int cell_pixels = 40);

}  // namespace histoflow::evaluation_common
