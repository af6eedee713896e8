#pragma once
// The packet kinds the slides plugin owns: a slide of a cohort, where to read one tile of it, and its tile grid.
// Stages of other plugins name them through these constants; `flowrun describe KIND` shows the declarations.
#include <vector>

#include "histoflow/kind.hpp"

namespace histoflow::slides {

inline constexpr const char* kSlideKind = "slide";
inline constexpr const char* kTileRefKind = "tile_ref";
inline constexpr const char* kGridKind = "tile_grid";

std::vector<PacketKind> slide_kinds();  // registered by the slides plugin

}  // namespace histoflow::slides
