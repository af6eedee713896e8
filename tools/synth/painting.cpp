#include "painting.hpp"

#include <cstring>
#include <stdexcept>

namespace synth {
namespace {

constexpr double kPi = 3.14159265358979323846;

// ---------------------------------------------------------------------------------------------------------
// Shapes

// An ellipse whose radius is modulated by a few low harmonics: an irregular, star-shaped blob.
struct Blob {
  double rx = 1, ry = 1, rot = 0;
  std::array<double, 6> amp{}, phase{};  // harmonics k = 2..7
  double max_factor() const {
    double s = 1;
    for (double a : amp) s += a;
    return s;
  }
};

Blob random_blob(Rng& r, double rx, double ry, double wobble) {
  Blob b;
  b.rx = rx;
  b.ry = ry;
  b.rot = r.uniform(0, 2 * kPi);
  for (size_t k = 0; k < b.amp.size(); ++k) {
    b.amp[k] = wobble * r.uniform(0.3, 1.0) / double(k + 1);
    b.phase[k] = r.uniform(0, 2 * kPi);
  }
  return b;
}

Polygon blob_polygon(const Blob& b, double cx, double cy, int n) {
  Polygon poly;
  poly.reserve(size_t(n));
  const double cr = std::cos(b.rot), sr = std::sin(b.rot);
  for (int i = 0; i < n; ++i) {
    const double th = 2 * kPi * i / n;
    double f = 1;
    for (size_t k = 0; k < b.amp.size(); ++k) f += b.amp[k] * std::sin(double(k + 2) * th + b.phase[k]);
    const double lx = b.rx * f * std::cos(th), ly = b.ry * f * std::sin(th);
    Point p{int(std::lround(cx + lx * cr - ly * sr)), int(std::lround(cy + lx * sr + ly * cr))};
    if (!poly.empty() && poly.back().x == p.x && poly.back().y == p.y) continue;
    poly.push_back(p);
  }
  while (poly.size() > 1 && poly.front().x == poly.back().x && poly.front().y == poly.back().y) poly.pop_back();
  return poly;
}

int vertex_count(double radius, double spacing, int lo, int hi) {
  return std::clamp(int(2 * kPi * radius / spacing), lo, hi);
}

// ---------------------------------------------------------------------------------------------------------
// Texture and nuclei

// Oriented fibres: stripes along `angle`, bent by a low-frequency warp. Returns [0,1].
struct Fiber {
  const ValueNoise* nf;
  const ValueNoise* nw;
  double ca, sa, len, width, warp, wscale;
  Fiber(const ValueNoise& f, const ValueNoise& w, double angle, double len_, double width_, double warp_,
        double wscale_)
      : nf(&f),
        nw(&w),
        ca(std::cos(angle)),
        sa(std::sin(angle)),
        len(len_),
        width(width_),
        warp(warp_),
        wscale(wscale_) {}
  double operator()(double x, double y) const {
    const double u = x * ca + y * sa, v = -x * sa + y * ca;
    const double w = (*nw)(float(x / wscale), float(y / wscale));
    const double vw = v + warp * (w - 0.5);
    // Coarse bundles plus fine fibrils (a second octave, offset in the lattice).
    const double f = 0.6 * (*nf)(float(u / len), float(vw / width)) +
                     0.4 * (*nf)(float(u / (0.5 * len) + 97.0), float(vw / (0.4 * width) + 131.0));
    return f * f * (3 - 2 * f);
  }
};

struct Nucleus {
  double x = 0, y = 0, rx = 5, ry = 5, angle = 0;
  double h = 1.2;                        // peak haematoxylin concentration
  double e_keep = 0.35;                  // fraction of the eosin under the nucleus that stays
  std::array<double, 3> amp{}, phase{};  // border harmonics k = 2, 3, 5
  bool vesicular = false;                // pale centre, dark rim (tumour)
  uint64_t tex = 0;
};

Nucleus make_nucleus(Rng& r, double x, double y, double rx, double ry, double angle, double h, double irr) {
  Nucleus n;
  n.x = x;
  n.y = y;
  n.rx = rx;
  n.ry = ry;
  n.angle = angle;
  n.h = h;
  for (size_t k = 0; k < 3; ++k) {
    n.amp[k] = irr * r.uniform(0.2, 1.0) / double(k + 1);
    n.phase[k] = r.uniform(0, 2 * kPi);
  }
  n.tex = r.next();
  return n;
}

// Paints one nucleus into the planes; where `allow` is given, only pixels with allow[i] != 0 change.
void paint_nucleus(Planes& p, const Nucleus& n, const uint8_t* allow) {
  double irr_sum = 0;
  for (double a : n.amp) irr_sum += a;
  const double R = std::max(n.rx, n.ry) * (1 + irr_sum) + 1.5;
  const int x0 = std::max(0, int(std::floor(n.x - R))), x1 = std::min(p.width, int(std::ceil(n.x + R)) + 1);
  const int y0 = std::max(0, int(std::floor(n.y - R))), y1 = std::min(p.height, int(std::ceil(n.y + R)) + 1);
  if (x0 >= x1 || y0 >= y1) return;
  const double ca = std::cos(n.angle), sa = std::sin(n.angle);
  const double rmin = std::min(n.rx, n.ry);
  double cp[3], sp[3];
  for (int k = 0; k < 3; ++k) {
    cp[k] = std::cos(n.phase[k]);
    sp[k] = std::sin(n.phase[k]);
  }
  for (int py = y0; py < y1; ++py) {
    for (int px = x0; px < x1; ++px) {
      const size_t i = size_t(py) * p.width + px;
      if (allow && !allow[i]) continue;
      const double dx = px + 0.5 - n.x, dy = py + 0.5 - n.y;
      const double nx = (dx * ca + dy * sa) / n.rx, ny = (-dx * sa + dy * ca) / n.ry;
      const double rho = std::sqrt(nx * nx + ny * ny);
      double g = 1;
      if (rho > 1e-9) {
        const double c1 = nx / rho, s1 = ny / rho;
        const double c2 = c1 * c1 - s1 * s1, s2 = 2 * c1 * s1;
        const double c3 = c2 * c1 - s2 * s1, s3 = s2 * c1 + c2 * s1;
        const double c5 = c3 * c2 - s3 * s2, s5 = s3 * c2 + c3 * s2;
        g += n.amp[0] * (c2 * cp[0] - s2 * sp[0]) + n.amp[1] * (c3 * cp[1] - s3 * sp[1]) +
             n.amp[2] * (c5 * cp[2] - s5 * sp[2]);
      }
      const double alpha = std::clamp((g - rho) * rmin + 0.5, 0.0, 1.0);
      if (alpha <= 0) continue;
      double hv = n.h;
      if (n.vesicular) {
        const double q = rho / g;
        hv *= 0.62 + 0.5 * q * q;
      }
      hv *= 0.86 + 0.28 * hash_unit(n.tex, uint64_t(px), uint64_t(py));
      const double hc = alpha * hv * 100.0;
      if (hc > p.h[i]) p.h[i] = uint8_t(std::min(255.0, hc + 0.5));
      p.e[i] = uint8_t(p.e[i] * (1 - alpha * (1 - n.e_keep)) + 0.5);
    }
  }
}

// Zone-specific nuclei. `angle` is the local fibre direction (for spindle nuclei).
void spindle_nucleus(Planes& p, Rng& r, double x, double y, double angle, const uint8_t* allow) {
  const double rx = r.uniform(6.0, 10.0), ry = r.uniform(2.2, 3.4);
  paint_nucleus(p, make_nucleus(r, x, y, rx, ry, angle + 0.25 * r.normal(), r.uniform(1.0, 1.35), 0.05), allow);
}

void lymphocyte(Planes& p, Rng& r, double x, double y, const uint8_t* allow) {
  const double rr = r.uniform(3.8, 5.3);
  Nucleus n = make_nucleus(r, x, y, rr, rr * r.uniform(0.85, 1.0), r.uniform(0, kPi), r.uniform(1.8, 2.3), 0.03);
  n.e_keep = 0.25;
  paint_nucleus(p, n, allow);
}

void normal_nucleus(Planes& p, Rng& r, double x, double y, const uint8_t* allow) {
  const double rr = r.uniform(4.8, 6.2);
  paint_nucleus(p, make_nucleus(r, x, y, rr, rr * r.uniform(0.8, 1.0), r.uniform(0, kPi), r.uniform(1.0, 1.3), 0.03),
                allow);
}

// Enlarged, pleomorphic, hyperchromatic nucleus, sometimes vesicular with a nucleolus.
void tumour_nucleus(Planes& p, Rng& r, double x, double y, const uint8_t* allow) {
  const double rx = r.uniform(7.0, 12.5), ry = rx * r.uniform(0.55, 1.0);
  Nucleus n = make_nucleus(r, x, y, rx, ry, r.uniform(0, kPi), r.uniform(1.6, 2.3), r.uniform(0.10, 0.26));
  n.vesicular = r.chance(0.5);
  n.e_keep = 0.25;
  paint_nucleus(p, n, allow);
  if (r.chance(0.4)) {
    const double a = r.uniform(0, 2 * kPi), d = r.uniform(0, 0.4) * ry;
    const double rr = r.uniform(1.5, 2.3);
    Nucleus nu = make_nucleus(r, x + d * std::cos(a), y + d * std::sin(a), rr, rr, 0, 2.45, 0.0);
    nu.e_keep = 0.2;
    paint_nucleus(p, nu, allow);
  }
}

// Per-pixel RGB from concentrations; background (no stain) gets +-3 noise, tissue +-5.
void planes_to_rgb(const Planes& p, const StainLut& lut, uint64_t noise_seed, std::vector<uint8_t>& rgb) {
  const size_t n = size_t(p.width) * p.height;
  rgb.resize(n * 3);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t qh = p.h[i], qe = p.e[i];
    const uint8_t* c = lut(qh, qe);
    const uint64_t hs = mix64(noise_seed + i);
    const int amp = (qh | qe) ? 5 : 3;
    const int span = 2 * amp + 1;
    for (int k = 0; k < 3; ++k) {
      const int noise = int((hs >> (8 * k + 8)) & 0xff) % span - amp;
      rgb[i * 3 + k] = uint8_t(std::clamp(int(c[k]) + noise, 0, 255));
    }
  }
}

// Calls fn(rng, x, y) for one jittered point per cell of a grid covering [x0,x1) x [y0,y1).
template <class F>
void jitter_grid(double x0, double y0, double x1, double y1, double cell, uint64_t seed, F&& fn) {
  const int nx = int(std::ceil((x1 - x0) / cell)), ny = int(std::ceil((y1 - y0) / cell));
  for (int cy = 0; cy < ny; ++cy)
    for (int cx = 0; cx < nx; ++cx) {
      Rng r(hash2(seed, uint64_t(cy) * uint64_t(nx) + uint64_t(cx)));
      const double jx = r.uniform(), jy = r.uniform();
      fn(r, x0 + (cx + jx) * cell, y0 + (cy + jy) * cell, x0 + (cx + 0.5) * cell, y0 + (cy + 0.5) * cell);
    }
}

}  // namespace

const char* zone_name(Zone z) {
  switch (z) {
    case Zone::Stroma: return "stroma";
    case Zone::Normal: return "normal";
    case Zone::Tumour: return "tumour";
    case Zone::Lymph: return "lymphoid";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------------------
// Slides

SlideGeometry make_geometry(uint64_t seed, int width, int height, int label, bool tissue, bool subtle) {
  SlideGeometry g;
  g.width = width;
  g.height = height;
  if (!tissue) return g;
  Rng r(seed);
  const double md = std::min(width, height);
  const int k = r.range(2, 4);
  const double frac = r.uniform(0.24, 0.36);
  std::vector<Blob> blobs;
  for (int i = 0; i < k; ++i) {
    const double area = frac * double(width) * height / k * r.uniform(0.7, 1.3);
    const double aspect = r.uniform(1.0, 1.8);
    const double ry = std::sqrt(area / (kPi * aspect));
    blobs.push_back(random_blob(r, aspect * ry, ry, 0.11));
  }
  const double margin = 0.025 * md, gap = 0.02 * md;
  double scale = 1;
  std::vector<std::array<double, 3>> placed;  // cx, cy, R
  for (int attempt = 0;; ++attempt) {
    if (attempt > 400) throw std::runtime_error("cannot place tissue pieces");
    placed.clear();
    bool ok = true;
    for (const Blob& b : blobs) {
      const double R = std::max(b.rx, b.ry) * scale * b.max_factor() + 1;
      if (2 * (R + margin) >= width || 2 * (R + margin) >= height) {
        ok = false;
        break;
      }
      bool done = false;
      for (int t = 0; t < 300 && !done; ++t) {
        const double cx = r.uniform(margin + R, width - margin - R);
        const double cy = r.uniform(margin + R, height - margin - R);
        bool free = true;
        for (const auto& q : placed)
          if (std::hypot(cx - q[0], cy - q[1]) < R + q[2] + gap) free = false;
        if (free) {
          placed.push_back({cx, cy, R});
          done = true;
        }
      }
      if (!done) {
        ok = false;
        break;
      }
    }
    if (ok) break;
    scale *= 0.93;
  }
  for (size_t i = 0; i < blobs.size(); ++i) {
    Blob b = blobs[i];
    b.rx *= scale;
    b.ry *= scale;
    Piece p;
    p.cx = placed[i][0];
    p.cy = placed[i][1];
    p.extent = placed[i][2];
    p.fiber_angle = r.uniform(0, kPi);
    p.polygon = blob_polygon(b, p.cx, p.cy, vertex_count(std::max(b.rx, b.ry), 30, 48, 200));
    g.pieces.push_back(std::move(p));
    blobs[i] = b;
  }

  // Regions: placed inside a piece (area-weighted choice), on the segment from its centre to a vertex.
  double total = 0;
  for (const Blob& b : blobs) total += b.rx * b.ry;
  auto place_region = [&](Zone z, double base_r) {
    double pick = r.uniform() * total;
    size_t pi = 0;
    for (; pi + 1 < blobs.size(); ++pi) {
      pick -= blobs[pi].rx * blobs[pi].ry;
      if (pick < 0) break;
    }
    const Piece& pc = g.pieces[pi];
    const Point& v = pc.polygon[size_t(r.range(0, int(pc.polygon.size()) - 1))];
    const double t = r.uniform(0.0, 0.55);
    const double cx = pc.cx + t * (v.x - pc.cx), cy = pc.cy + t * (v.y - pc.cy);
    double rad = base_r * r.uniform(0.75, 1.3);
    rad = std::min(rad, 0.55 * std::min(blobs[pi].rx, blobs[pi].ry));
    const double aspect = r.uniform(1.0, 1.5);
    Blob b = random_blob(r, rad * std::sqrt(aspect), rad / std::sqrt(aspect), 0.12);
    Region reg;
    reg.kind = z;
    reg.piece = int(pi);
    reg.polygon = blob_polygon(b, cx, cy, vertex_count(rad, 25, 24, 96));
    g.regions.push_back(std::move(reg));
  };
  if (subtle) {
    g.subtle = true;
    const int n_normal = r.range(1, 3);
    for (int i = 0; i < n_normal; ++i) place_region(Zone::Normal, 0.07 * md);
    const int n_tumour = label ? r.range(1, 2) : 0;
    for (int i = 0; i < n_tumour; ++i) place_region(Zone::Tumour, 0.04 * md);
  } else {
    const int n_normal = label ? r.range(0, 2) : r.range(2, 4);
    for (int i = 0; i < n_normal; ++i) place_region(Zone::Normal, 0.07 * md);
    if (label) {
      const int n_tumour = r.range(2, 4);
      for (int i = 0; i < n_tumour; ++i) place_region(Zone::Tumour, 0.085 * md);
    }
  }
  const int n_lymph = r.range(1, 3);
  for (int i = 0; i < n_lymph; ++i) place_region(Zone::Lymph, 0.035 * md);
  return g;
}

RenderedSlide render_slide(SlideGeometry& geom, const Stain& stain, uint64_t seed) {
  const int W = geom.width, H = geom.height;
  const size_t N = size_t(W) * H;
  RenderedSlide out;
  out.tissue.assign(N, 0);
  std::vector<uint8_t> zone(N, 0);
  for (size_t pi = 0; pi < geom.pieces.size(); ++pi)
    for_each_span(geom.pieces[pi].polygon, W, H, [&](int y, int xa, int xb) {
      std::memset(&out.tissue[size_t(y) * W + xa], int(pi + 1), size_t(xb - xa));
    });
  for (const Region& reg : geom.regions)
    for_each_span(reg.polygon, W, H, [&](int y, int xa, int xb) {
      const size_t row = size_t(y) * W;
      for (int x = xa; x < xb; ++x)
        if (out.tissue[row + x]) zone[row + x] = uint8_t(reg.kind);
    });
  for (auto& p : geom.pieces) {
    p.pixels = 0;
    p.bbox[0] = W;
    p.bbox[1] = H;
    p.bbox[2] = 0;
    p.bbox[3] = 0;
  }
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const uint8_t t = out.tissue[size_t(y) * W + x];
      if (!t) continue;
      Piece& p = geom.pieces[t - 1];
      ++p.pixels;
      p.bbox[0] = std::min(p.bbox[0], x);
      p.bbox[1] = std::min(p.bbox[1], y);
      p.bbox[2] = std::max(p.bbox[2], x + 1);
      p.bbox[3] = std::max(p.bbox[3], y + 1);
    }
  for (const auto& p : geom.pieces) out.tissue_pixels += p.pixels;

  Planes pl(W, H);
  const ValueNoise nf(derive(seed, "fiber")), nw(derive(seed, "warp")), nl(derive(seed, "low"));
  std::vector<Fiber> fibers;
  for (const auto& p : geom.pieces) fibers.emplace_back(nf, nw, p.fiber_angle, 90.0, 5.5, 60.0, 220.0);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = size_t(y) * W + x;
      const uint8_t t = out.tissue[i];
      if (!t) continue;
      const double lo = nl(float(x / 350.0), float(y / 350.0));
      double ce = 0, ch = 0;
      switch (Zone(zone[i])) {
        case Zone::Stroma: {
          const double f = fibers[t - 1](x, y);
          ce = 0.30 + 0.50 * f + 0.18 * lo;
          ch = 0.05 + 0.05 * lo;
          break;
        }
        case Zone::Normal: {
          const double f = fibers[t - 1](x, y);
          ce = 0.40 + 0.12 * f;
          ch = 0.16 + 0.05 * lo;
          break;
        }
        case Zone::Tumour: {
          const double f = fibers[t - 1](x, y);
          ce = geom.subtle ? 0.40 + 0.12 * f : 0.34 + 0.10 * f;
          ch = geom.subtle ? 0.16 + 0.05 * lo : 0.30 + 0.10 * lo;
          break;
        }
        case Zone::Lymph:
          ce = 0.22 + 0.06 * lo;
          ch = 0.25;
          break;
      }
      pl.e[i] = conc_byte(ce);
      pl.h[i] = conc_byte(ch);
    }

  // Nuclei: one candidate per 14-px cell; its zone decides what (if anything) is painted there.
  const uint8_t* allow = out.tissue.data();
  auto zone_at = [&](double x, double y, uint8_t* piece) -> int {
    const int ix = int(std::floor(x)), iy = int(std::floor(y));
    if (ix < 0 || iy < 0 || ix >= W || iy >= H) return -1;
    const size_t i = size_t(iy) * W + ix;
    if (!out.tissue[i]) return -1;
    *piece = out.tissue[i];
    return zone[i];
  };
  jitter_grid(0, 0, W, H, 14.0, derive(seed, "nuclei"), [&](Rng& r, double x, double y, double mx, double my) {
    uint8_t piece = 0;
    const int z = zone_at(x, y, &piece);
    if (z < 0) return;
    switch (Zone(z)) {
      case Zone::Stroma:
        if (r.chance(0.085))
          spindle_nucleus(pl, r, x, y, geom.pieces[piece - 1].fiber_angle, allow);
        else if (r.chance(0.02))
          lymphocyte(pl, r, x, y, allow);
        break;
      case Zone::Normal:  // regular spacing: near the cell centre
        if (r.chance(0.6)) normal_nucleus(pl, r, mx + (x - mx) * 0.45, my + (y - my) * 0.45, allow);
        break;
      case Zone::Tumour:  // subtle: as dense as normal mucosa; only the nuclei's size, shape and stain differ
        if (r.chance(geom.subtle ? 0.6 : 0.93)) tumour_nucleus(pl, r, x, y, allow);
        break;
      case Zone::Lymph: {
        lymphocyte(pl, r, x, y, allow);
        const double x2 = mx + r.uniform(-7, 7), y2 = my + r.uniform(-7, 7);
        uint8_t p2 = 0;
        if (zone_at(x2, y2, &p2) == int(Zone::Lymph)) lymphocyte(pl, r, x2, y2, allow);
        break;
      }
    }
  });

  const StainLut lut(stain);
  planes_to_rgb(pl, lut, derive(seed, "pixel-noise"), out.rgb);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Patches

const std::vector<std::string>& patch_classes() {
  static const std::vector<std::string> classes{"ADI", "BACK", "LYM", "MUS", "NORM", "STR", "TUM"};
  return classes;
}

std::vector<uint8_t> render_patch(const std::string& cls, int size, uint64_t seed, const StainLut& lut, bool subtle) {
  Rng r(seed);
  Planes p(size, size);
  const ValueNoise nf(r.next()), nw(r.next()), nl(r.next());
  const double ox = r.uniform(0, 20000), oy = r.uniform(0, 20000);  // where in the noise field we are
  const double ang = r.uniform(0, kPi);
  const double S = size;
  const uint64_t nseed = r.next();
  auto lo_at = [&](int x, int y) { return double(nl(float((x + ox) / 120.0), float((y + oy) / 120.0))); };
  auto set = [&](int x, int y, double ce, double ch) {
    const size_t i = size_t(y) * size + x;
    p.e[i] = conc_byte(ce);
    p.h[i] = conc_byte(ch);
  };

  if (cls == "ADI") {  // large empty fat cells separated by thin pink membranes
    const double cell = r.uniform(60, 110), half_width = r.uniform(0.8, 1.6), em = r.uniform(0.55, 0.8);
    const uint64_t vseed = r.next();
    auto feature = [&](int cx, int cy) {
      const uint64_t hv = hash2(vseed, (uint64_t(uint32_t(cy)) << 32) | uint32_t(cx));
      const double jx = 0.15 + 0.7 * double((hv >> 8) & 0xfffff) / 1048576.0;
      const double jy = 0.15 + 0.7 * double((hv >> 36) & 0xfffff) / 1048576.0;
      return std::array<double, 2>{(cx + jx) * cell, (cy + jy) * cell};
    };
    struct Edge {
      double dist;
      std::array<double, 2> p1, p2;
    };
    auto edge_at = [&](double x, double y) {
      const int gx = int(std::floor(x / cell)), gy = int(std::floor(y / cell));
      double d1 = 1e300, d2 = 1e300;
      std::array<double, 2> p1{}, p2{};
      for (int dy = -2; dy <= 2; ++dy)
        for (int dx = -2; dx <= 2; ++dx) {
          const auto q = feature(gx + dx, gy + dy);
          const double d = (q[0] - x) * (q[0] - x) + (q[1] - y) * (q[1] - y);
          if (d < d1) {
            d2 = d1;
            p2 = p1;
            d1 = d;
            p1 = q;
          } else if (d < d2) {
            d2 = d;
            p2 = q;
          }
        }
      const double sep = std::hypot(p2[0] - p1[0], p2[1] - p1[1]);
      return Edge{(d2 - d1) / (2 * sep), p1, p2};
    };
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double d = edge_at(x + 0.5 + ox, y + 0.5 + oy).dist;
        const double a = std::clamp(half_width + 0.5 - d, 0.0, 1.0);
        set(x, y, a * em * (0.85 + 0.3 * lo_at(x, y)), a * 0.06);
      }
    const int n_nuclei = r.range(0, 3);
    for (int k = 0; k < n_nuclei; ++k) {
      const double x = r.uniform(0, S), y = r.uniform(0, S);
      const Edge e = edge_at(x + ox, y + oy);
      const double ux = (e.p2[0] - e.p1[0]), uy = (e.p2[1] - e.p1[1]), ul = std::hypot(ux, uy);
      const double qx = x + e.dist * ux / ul, qy = y + e.dist * uy / ul;  // onto the membrane
      paint_nucleus(
          p, make_nucleus(r, qx, qy, r.uniform(6, 8), r.uniform(2.0, 2.6), std::atan2(uy, ux) + kPi / 2, 1.1, 0.02),
          nullptr);
    }
  } else if (cls == "BACK") {  // empty glass, faint smudges, a few specks
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) set(x, y, 0.10 * std::max(0.0, lo_at(x, y) - 0.55), 0);
    const int specks = r.range(0, 4);
    for (int k = 0; k < specks; ++k) {
      const double rr = r.uniform(1.5, 3.0);
      paint_nucleus(p, make_nucleus(r, r.uniform(0, S), r.uniform(0, S), rr, rr, 0, r.uniform(0.5, 1.0), 0.1), nullptr);
    }
  } else if (cls == "LYM") {  // sheets of small, dark, round nuclei
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) set(x, y, 0.20 + 0.10 * lo_at(x, y), 0.15);
    jitter_grid(-10, -10, S + 10, S + 10, 9.5, nseed, [&](Rng& g, double x, double y, double, double) {
      if (g.chance(0.85)) lymphocyte(p, g, x, y, nullptr);
    });
  } else if (cls == "STR") {  // pink fibrous stroma, sparse spindle nuclei
    const Fiber fib(nf, nw, ang, 90, 5.5, 60, 220);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double lo = lo_at(x, y);
        set(x, y, 0.30 + 0.50 * fib(x + ox, y + oy) + 0.18 * lo, 0.05 + 0.05 * lo);
      }
    jitter_grid(-10, -10, S + 10, S + 10, 14, nseed, [&](Rng& g, double x, double y, double, double) {
      if (g.chance(0.085))
        spindle_nucleus(p, g, x, y, ang, nullptr);
      else if (g.chance(0.02))
        lymphocyte(p, g, x, y, nullptr);
    });
  } else if (cls == "MUS") {  // smooth muscle: deep pink, long parallel fibres, cigar-shaped nuclei
    const Fiber fib(nf, nw, ang, 200, 4, 30, 300);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) set(x, y, 0.60 + 0.30 * fib(x + ox, y + oy) + 0.10 * lo_at(x, y), 0.10);
    jitter_grid(-16, -16, S + 16, S + 16, 16, nseed, [&](Rng& g, double x, double y, double, double) {
      if (!g.chance(0.14)) return;
      paint_nucleus(p,
                    make_nucleus(g, x, y, g.uniform(11, 16), g.uniform(2.2, 3.0), ang + 0.1 * g.normal(),
                                 g.uniform(1.0, 1.3), 0.02),
                    nullptr);
    });
  } else if (cls == "NORM") {  // normal mucosa: glands with a lumen and a rim of regular basal nuclei
    const Fiber fib(nf, nw, ang, 40, 4, 30, 150);
    std::vector<uint8_t> lamina(size_t(size) * size, 1);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) set(x, y, 0.30 + 0.20 * fib(x + ox, y + oy) + 0.10 * lo_at(x, y), 0.12);
    struct Gland {
      double cx, cy, a, b, t, rot;
    };
    std::vector<Gland> glands;
    // Crypts of ~50-70 um: a small lumen inside a thick rim of columnar epithelium.
    const int n_glands = r.range(2, 4);
    for (int k = 0; k < n_glands; ++k) {
      const double a = r.uniform(8, 20);
      glands.push_back({r.uniform(-0.05, 1.05) * S, r.uniform(-0.05, 1.05) * S, a, a * r.uniform(0.45, 1.0),
                        r.uniform(26, 38), r.uniform(0, kPi)});
    }
    for (const Gland& gl : glands) {
      const double c = std::cos(gl.rot), s = std::sin(gl.rot);
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
          const double dx = x + 0.5 - gl.cx, dy = y + 0.5 - gl.cy;
          const double lx = dx * c + dy * s, ly = -dx * s + dy * c;
          const double in = (lx / gl.a) * (lx / gl.a) + (ly / gl.b) * (ly / gl.b);
          const double out = (lx / (gl.a + gl.t)) * (lx / (gl.a + gl.t)) + (ly / (gl.b + gl.t)) * (ly / (gl.b + gl.t));
          if (in < 1) {
            set(x, y, 0.03, 0.01);
            lamina[size_t(y) * size + x] = 0;
          } else if (out < 1) {
            set(x, y, 0.38 + 0.06 * lo_at(x, y), 0.14);
            lamina[size_t(y) * size + x] = 0;
          }
        }
      // Goblet cells: pale mucin vacuoles in the inner part of the rim.
      const int goblets = r.range(3, 8);
      for (int k = 0; k < goblets; ++k) {
        const double phi = r.uniform(0, 2 * kPi), f = r.uniform(0.25, 0.5);
        const double gx = (gl.a + f * gl.t) * std::cos(phi), gy = (gl.b + f * gl.t) * std::sin(phi);
        const double cx = gl.cx + gx * c - gy * s, cy = gl.cy + gx * s + gy * c, rr = r.uniform(4, 7);
        for (int y = std::max(0, int(cy - rr)); y < std::min(size, int(cy + rr) + 1); ++y)
          for (int x = std::max(0, int(cx - rr)); x < std::min(size, int(cx + rr) + 1); ++x)
            if (std::hypot(x + 0.5 - cx, y + 0.5 - cy) < rr) set(x, y, 0.06, 0.10);
      }
    }
    for (const Gland& gl : glands) {
      const double A = gl.a + 0.78 * gl.t, B = gl.b + 0.78 * gl.t;
      const double circ = kPi * (3 * (A + B) - std::sqrt((3 * A + B) * (A + 3 * B)));
      const int count = std::max(6, int(circ / 7.5));
      const double c = std::cos(gl.rot), s = std::sin(gl.rot);
      for (int j = 0; j < count; ++j) {
        const double phi = 2 * kPi * (j + r.uniform(-0.1, 0.1)) / count;
        const double lx = A * std::cos(phi), ly = B * std::sin(phi);
        const double nang = std::atan2(std::sin(phi) / B, std::cos(phi) / A) + gl.rot;
        paint_nucleus(p,
                      make_nucleus(r, gl.cx + lx * c - ly * s, gl.cy + lx * s + ly * c, r.uniform(6, 8),
                                   r.uniform(2.6, 3.2), nang, r.uniform(1.1, 1.4), 0.02),
                      nullptr);
      }
    }
    jitter_grid(-10, -10, S + 10, S + 10, 14, nseed, [&](Rng& g, double x, double y, double, double) {
      const int ix = int(x), iy = int(y);
      if (ix >= 0 && iy >= 0 && ix < size && iy < size && !lamina[size_t(iy) * size + ix]) return;
      if (g.chance(0.12)) lymphocyte(p, g, x, y, lamina.data());
    });
  } else if (cls == "TUM") {  // crowded, enlarged, irregular, dark nuclei; a few small lumens
    const Fiber fib(nf, nw, ang, 90, 5.5, 60, 220);
    std::vector<uint8_t> cells(size_t(size) * size, 1);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double lo = lo_at(x, y);
        set(x, y, 0.30 + 0.10 * fib(x + ox, y + oy), 0.30 + 0.10 * lo);
      }
    const int lumens = r.range(0, 2);
    for (int k = 0; k < lumens; ++k) {
      const double cx = r.uniform(0, S), cy = r.uniform(0, S), a = r.uniform(6, 16), b = a * r.uniform(0.5, 1);
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
          const double dx = (x + 0.5 - cx) / a, dy = (y + 0.5 - cy) / b;
          if (dx * dx + dy * dy < 1) {
            set(x, y, 0.03, 0.01);
            cells[size_t(y) * size + x] = 0;
          }
        }
    }
    jitter_grid(-14, -14, S + 14, S + 14, 13, nseed, [&](Rng& g, double x, double y, double, double) {
      if (g.chance(0.9)) tumour_nucleus(p, g, x, y, cells.data());
    });
  } else {
    throw std::invalid_argument("unknown patch class " + cls);
  }

  // Subtle: the class's mean stain replaced by one drawn from a class-independent range (texture kept).
  if (subtle && cls != "ADI" && cls != "BACK") {
    double mean_h = 0, mean_e = 0;
    for (size_t i = 0; i < p.h.size(); ++i) mean_h += p.h[i], mean_e += p.e[i];
    mean_h = std::max(1.0, mean_h / double(p.h.size()));
    mean_e = std::max(1.0, mean_e / double(p.e.size()));
    const double target_h = r.uniform(22, 42), target_e = r.uniform(30, 55);
    for (size_t i = 0; i < p.h.size(); ++i) {
      p.h[i] = conc_byte(p.h[i] / 100.0 * target_h / mean_h);
      p.e[i] = conc_byte(p.e[i] / 100.0 * target_e / mean_e);
    }
  }
  // Per-patch stain variation: concentration scales and a slight brightness change.
  const double hs = r.uniform(0.85, 1.15), es = r.uniform(0.85, 1.15);
  std::array<double, 3> gain{};
  const double bright = cls == "BACK" ? r.uniform(0.88, 1.0) : r.uniform(0.96, 1.01);
  for (auto& g : gain) g = bright * r.uniform(0.985, 1.015);
  for (size_t i = 0; i < p.h.size(); ++i) {
    p.h[i] = conc_byte(p.h[i] / 100.0 * hs);
    p.e[i] = conc_byte(p.e[i] / 100.0 * es);
  }
  std::vector<uint8_t> rgb;
  planes_to_rgb(p, lut, r.next(), rgb);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t(std::clamp(std::lround(rgb[i] * gain[i % 3]), 0L, 255L));
  return rgb;
}

}  // namespace synth
