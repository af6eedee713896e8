#pragma once
// Attention heatmaps for attention aggregators, per slide: heatmaps/<slide>.png (attention, min-max scaled
// per slide, as coloured tiles over the slide thumbnail) and heatmaps/<slide>_top<k>.png (a montage of the
// k most attended tiles). In-domain slides use their test fold's model; external slides the mean attention
// of the fold models. Slides whose file cannot be opened are reported in heatmaps/README.md, not fatal.
#include <filesystem>
#include <functional>

#include "mil_reports.hpp"

namespace histoflow::mil {

// `on_slide(done, total)`, when given, is called after each slide (reading slides takes a while).
void write_heatmaps(const std::filesystem::path& directory, const MilRun& run, int top_k,
                    const std::function<void(std::size_t done, std::size_t total)>& on_slide = {});

}  // namespace histoflow::mil
