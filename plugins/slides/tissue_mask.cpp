#include "tissue_mask.hpp"

#include <algorithm>
#include <array>
#include <deque>

namespace histoflow::slides {

std::vector<std::uint8_t> saturation(const RgbImage& image) {
  std::vector<std::uint8_t> s(static_cast<std::size_t>(image.width) * image.height);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::uint8_t* p = &image.pixels[i * 3];
    const int max = std::max({p[0], p[1], p[2]}), min = std::min({p[0], p[1], p[2]});
    s[i] = max == 0 ? 0 : static_cast<std::uint8_t>((max - min) * 255 / max);
  }
  return s;
}

int otsu_threshold(const std::vector<std::uint8_t>& values) {
  std::array<double, 256> histogram{};
  for (auto v : values) histogram[v] += 1;
  const double total = static_cast<double>(values.size());
  double sum_all = 0;
  for (int i = 0; i < 256; ++i) sum_all += i * histogram[i];
  double weight_below = 0, sum_below = 0, best = -1;
  int threshold = 0;
  for (int t = 0; t < 256; ++t) {
    weight_below += histogram[t];
    if (weight_below == 0) continue;
    const double weight_above = total - weight_below;
    if (weight_above == 0) break;
    sum_below += t * histogram[t];
    const double mean_below = sum_below / weight_below, mean_above = (sum_all - sum_below) / weight_above;
    const double between = weight_below * weight_above * (mean_below - mean_above) * (mean_below - mean_above);
    if (between > best) {
      best = between;
      threshold = t + 1;  // values >= threshold are the upper class
    }
  }
  return threshold;
}

namespace {
// Max (dilate) or min (erode) over a square window, separably: rows, then columns.
Mask square_filter(const Mask& in, int radius, bool take_max) {
  if (radius <= 0) return in;
  Mask tmp = in, out = in;
  const auto pick = [&](std::uint8_t a, std::uint8_t b) { return take_max ? std::max(a, b) : std::min(a, b); };
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x) {
      std::uint8_t v = in.at(x, y);
      for (int dx = -radius; dx <= radius; ++dx) {
        const int xx = std::clamp(x + dx, 0, in.width - 1);
        v = pick(v, in.at(xx, y));
      }
      tmp.at(x, y) = v;
    }
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x) {
      std::uint8_t v = tmp.at(x, y);
      for (int dy = -radius; dy <= radius; ++dy) {
        const int yy = std::clamp(y + dy, 0, in.height - 1);
        v = pick(v, tmp.at(x, yy));
      }
      out.at(x, y) = v;
    }
  return out;
}
}  // namespace

Mask dilate(const Mask& mask, int radius) { return square_filter(mask, radius, true); }
Mask erode(const Mask& mask, int radius) { return square_filter(mask, radius, false); }

void remove_small_pieces(Mask& mask, std::int64_t min_pixels) {
  std::vector<int> label(mask.data.size(), -1);
  std::vector<std::pair<int, int>> piece;
  std::deque<std::pair<int, int>> queue;
  for (int y = 0; y < mask.height; ++y)
    for (int x = 0; x < mask.width; ++x) {
      const std::size_t start = static_cast<std::size_t>(y) * mask.width + x;
      if (!mask.data[start] || label[start] >= 0) continue;
      piece.clear();
      queue.push_back({x, y});
      label[start] = 1;
      while (!queue.empty()) {
        const auto [cx, cy] = queue.front();
        queue.pop_front();
        piece.push_back({cx, cy});
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int nx = cx + dx, ny = cy + dy;
            if (nx < 0 || ny < 0 || nx >= mask.width || ny >= mask.height) continue;
            const std::size_t n = static_cast<std::size_t>(ny) * mask.width + nx;
            if (mask.data[n] && label[n] < 0) {
              label[n] = 1;
              queue.push_back({nx, ny});
            }
          }
      }
      if (static_cast<std::int64_t>(piece.size()) < min_pixels)
        for (const auto& [px, py] : piece) mask.at(px, py) = 0;
    }
}

void fill_holes(Mask& mask) {
  // Background reachable from the border (4-connected) is outside; every other background pixel is a hole.
  std::vector<std::uint8_t> outside(mask.data.size(), 0);
  std::deque<std::pair<int, int>> queue;
  const auto seed = [&](int x, int y) {
    const std::size_t i = static_cast<std::size_t>(y) * mask.width + x;
    if (!mask.data[i] && !outside[i]) {
      outside[i] = 1;
      queue.push_back({x, y});
    }
  };
  for (int x = 0; x < mask.width; ++x) seed(x, 0), seed(x, mask.height - 1);
  for (int y = 0; y < mask.height; ++y) seed(0, y), seed(mask.width - 1, y);
  while (!queue.empty()) {
    const auto [x, y] = queue.front();
    queue.pop_front();
    if (x > 0) seed(x - 1, y);
    if (x + 1 < mask.width) seed(x + 1, y);
    if (y > 0) seed(x, y - 1);
    if (y + 1 < mask.height) seed(x, y + 1);
  }
  for (std::size_t i = 0; i < mask.data.size(); ++i)
    if (!outside[i]) mask.data[i] = 1;
}

TissueMaskResult tissue_mask(const RgbImage& image, const TissueMaskOptions& options) {
  TissueMaskResult result;
  const auto s = saturation(image);
  result.threshold = std::max(otsu_threshold(s), options.min_saturation);
  Mask mask{image.width, image.height, std::vector<std::uint8_t>(s.size())};
  for (std::size_t i = 0; i < s.size(); ++i) mask.data[i] = s[i] >= result.threshold ? 1 : 0;
  if (options.morphology_radius > 0) {
    // Closing joins tissue broken by pale gaps; opening then removes specks and thin debris.
    mask = erode(dilate(mask, options.morphology_radius), options.morphology_radius);
    mask = dilate(erode(mask, options.morphology_radius), options.morphology_radius);
  }
  remove_small_pieces(mask, options.min_piece_pixels);
  if (options.fill_holes) fill_holes(mask);
  result.mask = std::move(mask);
  return result;
}

std::vector<std::vector<std::pair<int, int>>> trace_contours(const Mask& mask) {
  // Walk pixel edges with the piece on the right-hand side; corners are integer lattice points.
  const auto inside = [&](int x, int y) { return x >= 0 && y >= 0 && x < mask.width && y < mask.height && mask.at(x, y); };
  std::vector<std::vector<std::pair<int, int>>> contours;
  // Direction 0: +x, 1: +y, 2: -x, 3: -y.
  static constexpr int dx[4] = {1, 0, -1, 0}, dy[4] = {0, 1, 0, -1};
  Mask seen_piece{mask.width, mask.height, std::vector<std::uint8_t>(mask.data.size(), 0)};
  for (int y = 0; y < mask.height; ++y)
    for (int x = 0; x < mask.width; ++x) {
      if (!inside(x, y) || inside(x, y - 1) || seen_piece.at(x, y)) continue;
      // A top edge of a piece not traced yet: follow its outer boundary from corner (x, y) heading +x.
      std::vector<std::pair<int, int>> ring;
      int cx = x, cy = y, dir = 0;
      std::size_t steps = 0;
      const std::size_t max_steps = 4 * mask.data.size() + 4;  // a boundary cannot be longer
      do {
        ring.push_back({cx, cy});
        cx += dx[dir], cy += dy[dir];
        // At the new corner, prefer turning left (keeping the piece on the right), then straight, then right.
        for (int turn : {3, 0, 1, 2}) {
          const int d = (dir + turn) % 4;
          // The pixel on the right of edge from (cx,cy) in direction d, and the one on its left.
          const int rx = cx + (d == 0 ? 0 : d == 1 ? -1 : d == 2 ? -1 : 0);
          const int ry = cy + (d == 0 ? 0 : d == 1 ? 0 : d == 2 ? -1 : -1);
          const int lx = cx + (d == 0 ? 0 : d == 1 ? 0 : d == 2 ? -1 : -1);
          const int ly = cy + (d == 0 ? -1 : d == 1 ? 0 : d == 2 ? 0 : -1);
          if (inside(rx, ry) && !inside(lx, ly)) {
            dir = d;
            break;
          }
        }
      } while (!(cx == x && cy == y) && ++steps < max_steps);
      // Mark the piece (8-connected flood) so its other top edges start no second outer ring.
      std::deque<std::pair<int, int>> queue{{x, y}};
      seen_piece.at(x, y) = 1;
      while (!queue.empty()) {
        const auto [px, py] = queue.front();
        queue.pop_front();
        for (int oy = -1; oy <= 1; ++oy)
          for (int ox = -1; ox <= 1; ++ox)
            if (inside(px + ox, py + oy) && !seen_piece.at(px + ox, py + oy)) {
              seen_piece.at(px + ox, py + oy) = 1;
              queue.push_back({px + ox, py + oy});
            }
      }
      // Collapse collinear points: keep corners only.
      std::vector<std::pair<int, int>> corners;
      for (std::size_t i = 0; i < ring.size(); ++i) {
        const auto& prev = ring[(i + ring.size() - 1) % ring.size()];
        const auto& next = ring[(i + 1) % ring.size()];
        const auto& cur = ring[i];
        const bool collinear = (prev.first == cur.first && cur.first == next.first) ||
                               (prev.second == cur.second && cur.second == next.second);
        if (!collinear) corners.push_back(cur);
      }
      corners.push_back(corners.front());
      contours.push_back(std::move(corners));
    }
  return contours;
}

}  // namespace histoflow::slides
