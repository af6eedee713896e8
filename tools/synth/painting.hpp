// H&E-like painting: slide geometry (tissue pieces, regions), whole-slide rendering and patch rendering.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "synth_common.hpp"

namespace synth {

// What the tissue inside a region looks like. Regions are clipped to the tissue pieces.
enum class Zone : uint8_t { Stroma = 0, Normal = 1, Tumour = 2, Lymph = 3 };
const char* zone_name(Zone z);

struct Piece {
  Polygon polygon;
  double cx = 0, cy = 0;       // centre of the generating ellipse
  double fiber_angle = 0;      // direction of the stroma fibres, radians
  double extent = 0;           // radius of a circle around (cx, cy) holding the polygon
  int64_t pixels = 0;          // filled pixels (set by render_slide)
  int bbox[4] = {0, 0, 0, 0};  // x0, y0, x1, y1 (exclusive) of the filled pixels
};

struct Region {
  Zone kind = Zone::Stroma;
  int piece = 0;  // the piece it was placed in (it may spill into background, where it has no effect)
  Polygon polygon;
};

struct SlideGeometry {
  int width = 0, height = 0;
  bool subtle = false;  // the tumour zone looks like normal mucosa but for its nuclei
  std::vector<Piece> pieces;
  std::vector<Region> regions;  // painted in order: later regions win
};

// 2-4 non-overlapping wobbly-ellipse tissue pieces; label-1 slides get tumour regions. tissue=false: none.
// subtle: both labels get the same normal and lymphoid regions, and label 1 adds one or two small tumour foci
// (a few percent of the tissue) whose background stain and nuclear density are normal mucosa's: the label
// lives in a few tiles and in nuclear morphology, not in colour.
SlideGeometry make_geometry(uint64_t seed, int width, int height, int label, bool tissue, bool subtle = false);

struct RenderedSlide {
  std::vector<uint8_t> rgb;     // width*height*3
  std::vector<uint8_t> tissue;  // width*height: piece index + 1, 0 = background
  int64_t tissue_pixels = 0;
};

// Paints the slide. Fills in the per-piece pixel counts and bounding boxes of `geom`.
RenderedSlide render_slide(SlideGeometry& geom, const Stain& stain, uint64_t seed);

// Patch classes, NCT-CRC-HE-like.
const std::vector<std::string>& patch_classes();
// size*size*3 RGB of one patch of class `cls` (one of patch_classes()), stained through `lut` with a small
// per-patch variation of stain intensity and brightness. subtle: the tissue classes (all but ADI and BACK)
// get mean haematoxylin and eosin drawn from one distribution whatever the class, so that texture and
// morphology, not colour, tell them apart.
std::vector<uint8_t> render_patch(const std::string& cls, int size, uint64_t seed, const StainLut& lut, bool subtle = false);

}  // namespace synth
