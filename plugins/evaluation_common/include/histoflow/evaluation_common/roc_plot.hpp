#pragma once
// ROC curves: false positive rate (x) against true positive rate (y) on [0, 1]^2, with the chance diagonal.
#include "histoflow/evaluation_common/line_plot.hpp"

namespace histoflow::evaluation_common {

// A `size` x `size` plot: grid every 0.2, the chance diagonal, then the curves in order.
RgbImage plot_roc_curves(const std::vector<PlotCurve>& curves, int size = 512);

}  // namespace histoflow::evaluation_common
