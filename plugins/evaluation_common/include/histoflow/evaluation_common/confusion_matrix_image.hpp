#pragma once
// A confusion matrix as a PNG: svg::confusion_matrix (one cell per (true row, predicted column), shaded by the
// row's fraction, count and fraction written in the cell, class names on both axes, a colour bar, a title)
// rasterised. Rows and columns follow the class order of the matrix (the same order as its CSV).
#include <filesystem>
#include <string>
#include <vector>

#include "histoflow/evaluation_common/classification_metrics.hpp"

namespace histoflow::evaluation_common {

// The figure as SVG. Throws std::invalid_argument when class_names does not match the matrix.
std::string confusion_matrix_svg(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names,
                                 const std::string& title);

// Written atomically.
void write_confusion_matrix_png(const std::filesystem::path& file, const ConfusionMatrix& matrix,
                                const std::vector<std::string>& class_names, const std::string& title);

}  // namespace histoflow::evaluation_common
