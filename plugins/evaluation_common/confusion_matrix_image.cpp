#include "histoflow/evaluation_common/confusion_matrix_image.hpp"

#include <stdexcept>

#include "histoflow/evaluation_common/svg_raster.hpp"
#include "histoflow/svg_plot.hpp"

namespace histoflow::evaluation_common {

std::string confusion_matrix_svg(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names,
                                 const std::string& title) {
  if (matrix.classes <= 0 || class_names.size() != static_cast<std::size_t>(matrix.classes))
    throw std::invalid_argument("confusion matrix image '" + title + "': " + std::to_string(class_names.size()) +
                                " class names for " + std::to_string(matrix.classes) + " classes");
  svg::ConfusionMatrix figure{title, class_names, {}};
  for (std::int64_t r = 0; r < matrix.classes; ++r) {
    figure.counts.emplace_back();
    for (std::int64_t c = 0; c < matrix.classes; ++c) figure.counts.back().push_back(matrix.at(r, c));
  }
  return svg::confusion_matrix(figure);
}

void write_confusion_matrix_png(const std::filesystem::path& file, const ConfusionMatrix& matrix,
                                const std::vector<std::string>& class_names, const std::string& title) {
  write_svg_as_png(file, confusion_matrix_svg(matrix, class_names, title));
}

}  // namespace histoflow::evaluation_common
