#include "histoflow/evaluation_common/roc_plot.hpp"

#include <stdexcept>

namespace histoflow::evaluation_common {

RgbImage plot_roc_curves(const std::vector<PlotCurve>& curves, int size) {
  if (size < 64) throw std::invalid_argument("ROC plot size must be at least 64 pixels");
  PlotFrame frame;
  frame.diagonal = true;
  return plot_curves(curves, frame, size, size);
}

}  // namespace histoflow::evaluation_common
