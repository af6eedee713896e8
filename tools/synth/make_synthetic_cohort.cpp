// make_synthetic_cohort: a deterministic synthetic H&E cohort for histoflow's tests and demos.
//
// Writes Aperio-style pyramidal slides (train and external cohort), their manifests, a layout.json with the
// exact tissue geometry, an NCT-CRC-HE-like patch dataset and, optionally, a corpus of broken inputs.
// Same seed and arguments -> byte-identical files. Run with --help for the options.

#include <vips/vips.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "painting.hpp"
#include "synth_common.hpp"
#include "tiff_io.hpp"

namespace fs = std::filesystem;
using namespace synth;

namespace {

constexpr const char* kProgram = "make_synthetic_cohort";
constexpr int kTile = 256;
constexpr int kJpegQuality = 80;

const char* kUsage = R"(usage: make_synthetic_cohort --out DIR [options]

Writes a deterministic synthetic H&E cohort (same seed and options -> byte-identical files):
  DIR/slides/*.tiff, DIR/manifest.csv              training cohort (Aperio-style pyramidal JPEG TIFFs)
  DIR/external/slides/*.tiff, DIR/external/manifest.csv   external cohort with a shifted stain
  DIR/layout.json                                  parameters, seed and exact tissue geometry per slide
  DIR/patches/{train,test}/<CLASS>/<n>.{png,tif,jpg}   NCT-CRC-HE-like patch dataset
  DIR/bad/ and DIR/bad/manifest.csv                broken inputs (with --bad-inputs)

options:
  --out DIR                output folder (created if missing; files in it are overwritten)
  --seed N                 random seed (default 7)
  --slides N               training slides, >= 2 (default 20)
  --external N             external-cohort slides, >= 0 (default 8)
  --width W --height H     level-0 size in pixels, each >= 1024 (default 6144 x 4096); a slide is painted in
                           memory, about 5 bytes per pixel per thread (40,000 x 30,000: 6 GB)
  --mpp X                  microns per pixel written as the Aperio MPP field (default 0.5)
  --without-mpp N          the first N training slides omit the MPP field (default 2)
  --patches-per-class N    training patches per class; the test split gets N/2 (default 40, 0 = none)
  --patch-size P           patch side in pixels, 32..4096 (default 224)
  --subtle                 a harder cohort: the slide label lives in one or two small tumour foci (a few
                           percent of the tissue) that differ from normal mucosa by their nuclei, not their
                           colour; the tissue patch classes share one colour distribution (texture decides)
  --bad-inputs             also write the broken-input corpus in DIR/bad
  --threads N              worker threads (default: the number of cores, at most 8)
  -h, --help               this text
)";

struct Options {
  fs::path out;
  uint64_t seed = 7;
  int slides = 20;
  int external = 8;
  int width = 6144;
  int height = 4096;
  double mpp = 0.5;
  int without_mpp = 2;
  int patches_per_class = 40;
  int patch_size = 224;
  bool bad_inputs = false;
  bool subtle = false;
  int threads = 0;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T parse_number(const std::string& flag, const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) throw UsageError(flag + " expects a number, got '" + text + "'");
  return value;
}

int parse_int(const std::string& flag, const std::string& text, long lo, long hi) {
  const long v = parse_number<long>(flag, text);
  if (v < lo || v > hi)
    throw UsageError(flag + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + text);
  return int(v);
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool have_out = false;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool inline_value = false;
    if (flag == "-h" || flag == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + flag + "'");
    if (const auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    if (flag == "--bad-inputs" || flag == "--subtle") {
      if (inline_value) throw UsageError(flag + " takes no value");
      (flag == "--subtle" ? o.subtle : o.bad_inputs) = true;
      continue;
    }
    static const std::vector<std::string> valued{"--out",        "--seed",        "--slides",
                                                 "--external",   "--width",       "--height",
                                                 "--mpp",        "--without-mpp", "--patches-per-class",
                                                 "--patch-size", "--threads"};
    if (std::find(valued.begin(), valued.end(), flag) == valued.end())
      throw UsageError("unknown option '" + flag + "'");
    if (!inline_value) {
      if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
      value = args[++i];
      if (value.rfind("--", 0) == 0) throw UsageError(flag + " needs a value, got the option '" + value + "'");
    }
    if (flag == "--out") {
      if (value.empty()) throw UsageError("--out needs a folder");
      o.out = value;
      have_out = true;
    } else if (flag == "--seed") {
      o.seed = parse_number<uint64_t>(flag, value);
    } else if (flag == "--slides") {
      o.slides = parse_int(flag, value, 2, 100000);
    } else if (flag == "--external") {
      o.external = parse_int(flag, value, 0, 100000);
    } else if (flag == "--width") {
      o.width = parse_int(flag, value, 1024, 200000);
    } else if (flag == "--height") {
      o.height = parse_int(flag, value, 1024, 200000);
    } else if (flag == "--mpp") {
      o.mpp = parse_number<double>(flag, value);
      if (!std::isfinite(o.mpp) || o.mpp <= 0 || o.mpp > 100)
        throw UsageError("--mpp must be in (0, 100], got " + value);
    } else if (flag == "--without-mpp") {
      o.without_mpp = parse_int(flag, value, 0, 100000);
    } else if (flag == "--patches-per-class") {
      o.patches_per_class = parse_int(flag, value, 0, 1000000);
    } else if (flag == "--patch-size") {
      o.patch_size = parse_int(flag, value, 32, 4096);
    } else if (flag == "--threads") {
      o.threads = parse_int(flag, value, 1, 256);
    }
  }
  if (!have_out) throw UsageError("--out DIR is required");
  if (o.without_mpp > o.slides)
    throw UsageError("--without-mpp (" + std::to_string(o.without_mpp) + ") exceeds --slides (" +
                     std::to_string(o.slides) + ")");
  // A slide is painted in memory (5 bytes per pixel: RGB, tissue and zone maps) before libvips writes its pyramid:
  // 2 gigapixels (a 40,000 x 50,000 slide) need about 10 GB per thread.
  if (double(o.width) * o.height > 2.0e9)
    throw UsageError("--width x --height is too large (at most 2000 megapixels per slide)");
  if (o.threads == 0) o.threads = int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  return o;
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

std::string num(double v) {  // shortest round-trip representation
  char buf[64];
  const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ptr);
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string json_polygon(const Polygon& p) {
  std::string s = "[";
  for (size_t i = 0; i < p.size(); ++i) {
    if (i) s += ",";
    s += "[" + std::to_string(p[i].x) + "," + std::to_string(p[i].y) + "]";
  }
  return s + "]";
}

template <size_t N>
std::string json_array(const std::array<double, N>& a) {
  std::string s = "[";
  for (size_t i = 0; i < N; ++i) s += (i ? "," : "") + num(a[i]);
  return s + "]";
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

// ---------------------------------------------------------------------------------------------------------
// Plans

struct Output {
  fs::path file;              // where it is written
  std::string rel;            // path relative to DIR (for layout.json)
  std::optional<double> mpp;  // the MPP field; absent = omitted
  std::string id, patient;    // set where they differ from the slide's (the bad-MPP variants)
};

struct SlidePlan {
  std::string id, cohort, patient;
  int label = 0;
  uint64_t seed = 0;
  SlideGeometry geom;
  Stain stain;
  std::vector<Output> outputs;  // same pixels, different descriptions (the bad-MPP variants)
  bool pick_corrupt_tile = false;
  // results
  std::vector<std::pair<int, int>> levels;
  int64_t tissue_pixels = 0;
  std::optional<CorruptedTile> corrupted;
};

double app_mag(const Options& o) { return std::round(10.0 / o.mpp * 100.0) / 100.0; }

std::string aperio_description(const SlidePlan& s, const Output& out, const Options& o) {
  const int W = s.geom.width, H = s.geom.height;
  std::string d = "Aperio Image Library v10.0.50\r\n" + std::to_string(W) + "x" + std::to_string(H) + " [0,0 " +
                  std::to_string(W) + "x" + std::to_string(H) + "] (" + std::to_string(kTile) + "x" +
                  std::to_string(kTile) + ") JPEG/RGB Q=" + std::to_string(kJpegQuality);
  d += "|AppMag = " + num(app_mag(o));
  d += "|StripeWidth = 2040|ScanScope ID = HISTOFLOW-SYNTH|Filename = " + (out.id.empty() ? s.id : out.id);
  if (out.mpp) d += "|MPP = " + num(*out.mpp);
  return d;
}

Stain cohort_stain(const std::string& cohort, Rng& r) {
  Stain s;                     // training cohort: the defaults
  if (cohort == "external") {  // more haematoxylin, less eosin, darker background
    s.i0 = {232, 228, 236};
    s.h_od = {0.55, 0.76, 0.35};
    s.e_od = {0.12, 0.70, 0.35};
    s.h_scale = 1.25;
    s.e_scale = 0.70;
  }
  s.h_scale *= r.uniform(0.95, 1.05);
  s.e_scale *= r.uniform(0.95, 1.05);
  return s;
}

std::string padded(int i, int n) {
  const int digits = std::max(3, int(std::to_string(std::max(0, n - 1)).size()));
  std::string s = std::to_string(i);
  return std::string(size_t(std::max(0, digits - int(s.size()))), '0') + s;
}

// Patients and labels: some training patients have two slides (same label); labels are balanced.
std::vector<SlidePlan> plan_cohort(const Options& o, const std::string& cohort, int count, bool pairs) {
  Rng r(derive(o.seed, "cohort/" + cohort));
  struct Group {
    int size, label;
  };
  int n_pairs = pairs ? count / 5 : 0;
  n_pairs -= n_pairs % 2;
  const int singles = count - 2 * n_pairs;
  std::vector<Group> groups;
  for (int i = 0; i < n_pairs; ++i) groups.push_back({2, i % 2});
  for (int i = 0; i < singles - singles % 2; ++i) groups.push_back({1, i % 2});
  if (singles % 2) groups.push_back({1, r.range(0, 1)});
  for (size_t i = groups.size(); i > 1; --i) std::swap(groups[i - 1], groups[size_t(r.range(0, int(i) - 1))]);

  const std::string prefix = cohort == "train" ? "train_" : "ext_";
  const std::string patient_prefix = cohort == "train" ? "P" : "EP";
  std::vector<SlidePlan> plans;
  int patient = 0;
  for (const Group& g : groups) {
    for (int k = 0; k < g.size; ++k) {
      SlidePlan s;
      const int index = int(plans.size());
      s.id = prefix + padded(index, count);
      s.cohort = cohort;
      s.patient = patient_prefix + padded(patient, int(groups.size()));
      s.label = g.label;
      s.seed = derive(o.seed, "slide/" + s.id);
      Rng sr(derive(s.seed, "stain"));
      s.stain = cohort_stain(cohort, sr);
      s.geom = make_geometry(derive(s.seed, "geometry"), o.width, o.height, s.label, true, o.subtle);
      const std::string sub = cohort == "train" ? "" : "external/";
      Output out;
      out.rel = sub + "slides/" + s.id + ".tiff";
      out.file = o.out / out.rel;
      if (!(cohort == "train" && index < o.without_mpp)) out.mpp = o.mpp;
      s.outputs.push_back(out);
      plans.push_back(std::move(s));
    }
    ++patient;
  }
  return plans;
}

// The IFD-0 tile to corrupt: the one with the most tissue (on small slides none may be full), and among those
// the nearest to the centre of the largest piece.
std::pair<uint32_t, uint32_t> choose_tile(const SlidePlan& s, const RenderedSlide& r) {
  const int W = s.geom.width, H = s.geom.height;
  size_t biggest = 0;
  for (size_t i = 1; i < s.geom.pieces.size(); ++i)
    if (s.geom.pieces[i].pixels > s.geom.pieces[biggest].pixels) biggest = i;
  const double cx = s.geom.pieces[biggest].cx, cy = s.geom.pieces[biggest].cy;
  int64_t best_count = 0;
  double best_dist = 1e300;
  std::pair<uint32_t, uint32_t> pick{0, 0};
  for (int ty = 0; ty + kTile <= H; ty += kTile)
    for (int tx = 0; tx + kTile <= W; tx += kTile) {
      int64_t count = 0;
      for (int y = ty; y < ty + kTile; ++y)
        for (int x = tx; x < tx + kTile; ++x) count += r.tissue[size_t(y) * W + x] != 0;
      const double d = std::hypot(tx + kTile / 2.0 - cx, ty + kTile / 2.0 - cy);
      if (count > best_count || (count == best_count && count > 0 && d < best_dist)) {
        best_count = count;
        best_dist = d;
        pick = {uint32_t(tx), uint32_t(ty)};
      }
    }
  if (best_count == 0) throw std::runtime_error("no tile with tissue in " + s.id);
  return pick;
}

void make_slide(SlidePlan& s, const Options& o) {
  RenderedSlide r = render_slide(s.geom, s.stain, derive(s.seed, "paint"));
  s.tissue_pixels = r.tissue_pixels;
  for (const Output& out : s.outputs) {
    std::optional<double> res;
    if (out.mpp && *out.mpp > 0) res = 1000.0 / *out.mpp;  // px per mm
    save_pyramid_tiff(out.file.string(), r.rgb.data(), s.geom.width, s.geom.height, aperio_description(s, out, o), res,
                      kJpegQuality, kTile);
    if (!res) clear_resolution_unit(out.file.string());  // no MPP (or MPP 0): no physical resolution either
  }
  if (s.pick_corrupt_tile) {
    const auto [x, y] = choose_tile(s, r);
    s.corrupted = corrupt_tile(s.outputs.front().file.string(), x, y, derive(s.seed, "garbage"));
  }
}

// Runs job(0..count-1) on `threads` workers; rethrows the first failure.
void run_jobs(size_t count, int threads, const std::function<void(size_t)>& job) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::string first_error;
  auto worker = [&] {
    while (!failed) {
      const size_t i = next++;
      if (i >= count) break;
      try {
        job(i);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(m);
        if (first_error.empty()) first_error = e.what();
        failed = true;
      }
    }
    vips_thread_shutdown();
  };
  std::vector<std::thread> pool;
  const size_t n = std::min(size_t(std::max(1, threads)), count);
  for (size_t t = 0; t < n; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (failed) throw std::runtime_error(first_error);
}

// ---------------------------------------------------------------------------------------------------------
// Manifests and layout

std::string manifest_csv(const std::vector<SlidePlan>& plans, const std::string& strip_prefix) {
  std::string csv = "slide,patient,label,cohort\n";
  for (const auto& s : plans) {
    std::string rel = s.outputs.front().rel;
    if (!strip_prefix.empty() && rel.rfind(strip_prefix, 0) == 0) rel = rel.substr(strip_prefix.size());
    csv += rel + "," + s.patient + "," + std::to_string(s.label) + "," + s.cohort + "\n";
  }
  return csv;
}

std::string slide_json(const SlidePlan& s, const Output& out, const std::string& ind) {
  std::ostringstream j;
  const std::string in2 = ind + "  ";
  j << "{\n";
  j << in2 << "\"id\": " << json_str(out.id.empty() ? s.id : out.id) << ",\n";
  j << in2 << "\"cohort\": " << json_str(s.cohort) << ",\n";
  j << in2 << "\"path\": " << json_str(out.rel) << ",\n";
  j << in2 << "\"patient\": " << json_str(out.patient.empty() ? s.patient : out.patient) << ",\n";
  j << in2 << "\"label\": " << s.label << ",\n";
  j << in2 << "\"width\": " << s.geom.width << ",\n";
  j << in2 << "\"height\": " << s.geom.height << ",\n";
  j << in2 << "\"mpp\": " << (out.mpp ? num(*out.mpp) : "null") << ",\n";
  j << in2 << "\"levels\": [";
  for (size_t i = 0; i < s.levels.size(); ++i)
    j << (i ? ", " : "") << "[" << s.levels[i].first << ", " << s.levels[i].second << "]";
  j << "],\n";
  j << in2 << "\"stain\": {\"i0\": " << json_array(s.stain.i0) << ", \"h_od\": " << json_array(s.stain.h_od)
    << ", \"e_od\": " << json_array(s.stain.e_od) << ", \"h_scale\": " << num(s.stain.h_scale)
    << ", \"e_scale\": " << num(s.stain.e_scale) << "},\n";
  j << in2 << "\"tissue_pixels\": " << s.tissue_pixels << ",\n";
  j << in2 << "\"pieces\": [";
  for (size_t i = 0; i < s.geom.pieces.size(); ++i) {
    const Piece& p = s.geom.pieces[i];
    j << (i ? "," : "") << "\n"
      << in2 << "  {\"pixels\": " << p.pixels << ", \"bbox\": [" << p.bbox[0] << ", " << p.bbox[1] << ", " << p.bbox[2]
      << ", " << p.bbox[3] << "], \"polygon\": " << json_polygon(p.polygon) << "}";
  }
  j << (s.geom.pieces.empty() ? "" : "\n" + in2) << "],\n";
  j << in2 << "\"regions\": [";
  for (size_t i = 0; i < s.geom.regions.size(); ++i) {
    const Region& r = s.geom.regions[i];
    j << (i ? "," : "") << "\n"
      << in2 << "  {\"kind\": " << json_str(zone_name(r.kind)) << ", \"piece\": " << r.piece
      << ", \"polygon\": " << json_polygon(r.polygon) << "}";
  }
  j << (s.geom.regions.empty() ? "" : "\n" + in2) << "]\n";
  j << ind << "}";
  return j.str();
}

struct BadFile {
  std::string file, kind, expect, patient, extra;  // extra: already formatted JSON members
  int label = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse_args(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << kProgram << ": error: " << e.what() << "\n(run " << kProgram << " --help for usage)\n";
    return 2;
  }
  if (VIPS_INIT(argv[0])) {
    std::cerr << kProgram << ": error: cannot initialise libvips: " << vips_error_buffer() << "\n";
    return 1;
  }
  vips_concurrency_set(1);  // parallelism comes from running several slides at once
  vips_cache_set_max(0);

  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  try {
    if (fs::exists(o.out) && !fs::is_directory(o.out))
      throw std::runtime_error(o.out.string() + " exists and is not a folder");
    fs::create_directories(o.out / "slides");
    if (o.external > 0) fs::create_directories(o.out / "external" / "slides");

    std::vector<SlidePlan> train = plan_cohort(o, "train", o.slides, true);
    std::vector<SlidePlan> external = plan_cohort(o, "external", o.external, false);

    // Broken inputs: one tumour slide written three times (corrupt tile, MPP 0, MPP 1000), one without tissue.
    std::vector<SlidePlan> bad;
    if (o.bad_inputs) {
      fs::create_directories(o.out / "bad");
      SlidePlan base;
      base.id = "bad_corrupt_tile";
      base.cohort = "bad";
      base.patient = "BP000";
      base.label = 1;
      base.seed = derive(o.seed, "slide/bad_corrupt_tile");
      Rng sr(derive(base.seed, "stain"));
      base.stain = cohort_stain("train", sr);
      base.geom = make_geometry(derive(base.seed, "geometry"), o.width, o.height, 1, true);
      base.outputs.push_back({o.out / "bad" / "corrupt_tile.tiff", "bad/corrupt_tile.tiff", o.mpp, "", ""});
      base.outputs.push_back({o.out / "bad" / "zero_mpp.tiff", "bad/zero_mpp.tiff", 0.0, "bad_zero_mpp", "BP006"});
      base.outputs.push_back(
          {o.out / "bad" / "absurd_mpp.tiff", "bad/absurd_mpp.tiff", 1000.0, "bad_absurd_mpp", "BP007"});
      base.pick_corrupt_tile = true;
      bad.push_back(std::move(base));

      SlidePlan empty;
      empty.id = "bad_no_tissue";
      empty.cohort = "bad";
      empty.patient = "BP001";
      empty.label = 0;
      empty.seed = derive(o.seed, "slide/bad_no_tissue");
      Rng sr2(derive(empty.seed, "stain"));
      empty.stain = cohort_stain("train", sr2);
      empty.geom = make_geometry(derive(empty.seed, "geometry"), o.width, o.height, 0, false);
      empty.outputs.push_back({o.out / "bad" / "no_tissue.tiff", "bad/no_tissue.tiff", o.mpp, "", ""});
      bad.push_back(std::move(empty));
    }

    // Slides: the multi-output bad slide first (longest job), then the cohorts.
    std::vector<SlidePlan*> jobs;
    for (auto& s : bad) jobs.push_back(&s);
    for (auto& s : train) jobs.push_back(&s);
    for (auto& s : external) jobs.push_back(&s);
    run_jobs(jobs.size(), o.threads, [&](size_t i) { make_slide(*jobs[i], o); });
    for (SlidePlan* s : jobs) s->levels = tiff_levels(s->outputs.front().file.string());
    const double t_slides = seconds();
    std::cout << kProgram << ": " << train.size() << " training + " << external.size() << " external slides"
              << (bad.empty() ? "" : " + 5 broken-input slides") << " in " << num(std::round(t_slides * 100) / 100)
              << " s (" << o.threads << " threads)\n";

    write_file(o.out / "manifest.csv", manifest_csv(train, ""));
    if (o.external > 0) write_file(o.out / "external" / "manifest.csv", manifest_csv(external, "external/"));

    // Patches.
    const auto& classes = patch_classes();
    struct PatchJob {
      std::string split, cls;
      int n;
    };
    std::vector<PatchJob> patch_jobs;
    const int per_split[2] = {o.patches_per_class, o.patches_per_class / 2};
    const char* splits[2] = {"train", "test"};
    for (int sp = 0; sp < 2; ++sp)
      for (const auto& c : classes) {
        if (per_split[sp] > 0) fs::create_directories(o.out / "patches" / splits[sp] / c);
        for (int n = 0; n < per_split[sp]; ++n) patch_jobs.push_back({splits[sp], c, n});
      }
    auto patch_ext = [](int n) { return n % 10 == 3 ? ".tif" : n % 10 == 7 ? ".jpg" : ".png"; };
    const StainLut patch_lut{Stain{}};
    run_jobs(patch_jobs.size(), o.threads, [&](size_t i) {
      const PatchJob& pj = patch_jobs[i];
      const auto rgb = render_patch(pj.cls, o.patch_size,
                                    derive(o.seed, "patch/" + pj.split + "/" + pj.cls, uint64_t(pj.n)), patch_lut, o.subtle);
      const fs::path file = o.out / "patches" / pj.split / pj.cls /
                            (padded(pj.n, per_split[pj.split == "train" ? 0 : 1]) + patch_ext(pj.n));
      save_image(file.string(), rgb.data(), o.patch_size, o.patch_size);
    });
    const double t_patches = seconds();
    if (!patch_jobs.empty())
      std::cout << kProgram << ": " << patch_jobs.size() << " patches in "
                << num(std::round((t_patches - t_slides) * 100) / 100) << " s\n";

    // Broken inputs that need no painting.
    std::vector<BadFile> bad_files;
    if (o.bad_inputs) {
      const fs::path bd = o.out / "bad";
      write_file(bd / "empty.tiff", "");
      write_file(bd / "not_a_slide.svs",
                 "This is not a slide.\nIt is a plain text file with a slide's file extension, written by "
                 "make_synthetic_cohort to test error handling.\n");
      // Truncated: the first training slide cut to 40% of its bytes.
      const SlidePlan& src = train.front();
      std::string bytes;
      {
        std::ifstream f(src.outputs.front().file, std::ios::binary);
        std::ostringstream ss;
        ss << f.rdbuf();
        bytes = ss.str();
      }
      const size_t cut = bytes.size() * 4 / 10;
      write_file(bd / "truncated.tiff", bytes.substr(0, cut));
      std::error_code ec;
      fs::remove(bd / "missing.tiff", ec);  // listed in the manifest, never written

      const SlidePlan& base = bad[0];
      const SlidePlan& none = bad[1];
      const CorruptedTile& c = *base.corrupted;
      std::ostringstream ct;
      ct << "\"corrupt_tile\": {\"level\": 0, \"index\": " << c.index << ", \"col\": " << c.col
         << ", \"row\": " << c.row << ", \"x\": " << c.x << ", \"y\": " << c.y << ", \"width\": " << c.tile_width
         << ", \"height\": " << c.tile_height << ", \"offset\": " << c.offset << ", \"byte_count\": " << c.byte_count
         << "}";
      bad_files.push_back({"empty.tiff", "empty", "open_fails", "BP002", "\"bytes\": 0", 0});
      bad_files.push_back({"truncated.tiff", "truncated", "open_fails", "BP003",
                           "\"source\": " + json_str(src.outputs.front().rel) + ", \"bytes\": " + std::to_string(cut) +
                               ", \"source_bytes\": " + std::to_string(bytes.size()),
                           1});
      bad_files.push_back({"not_a_slide.svs", "not_a_slide", "open_fails", "BP004", "", 0});
      bad_files.push_back({"missing.tiff", "missing", "missing", "BP005", "", 1});
      bad_files.push_back(
          {"corrupt_tile.tiff", "corrupt_tile", "opens; reading the corrupted level-0 tile fails", base.patient,
           ct.str() + ",\n      \"slide\": " + slide_json(base, base.outputs[0], "      "), base.label});
      bad_files.push_back({"no_tissue.tiff", "no_tissue", "opens; no tissue", none.patient,
                           "\"slide\": " + slide_json(none, none.outputs[0], "      "), none.label});
      bad_files.push_back({"zero_mpp.tiff", "zero_mpp", "opens; MPP = 0", "BP006",
                           "\"slide\": " + slide_json(base, base.outputs[1], "      "), base.label});
      bad_files.push_back({"absurd_mpp.tiff", "absurd_mpp", "opens; MPP = 1000", "BP007",
                           "\"slide\": " + slide_json(base, base.outputs[2], "      "), base.label});
      // Two good slides, one of each label, preferably ones with an MPP.
      for (int want : {0, 1}) {
        const SlidePlan* pick = nullptr;
        for (const auto& t : train)
          if (t.label == want && (!pick || (!pick->outputs[0].mpp && t.outputs[0].mpp))) pick = &t;
        if (pick)
          bad_files.push_back(
              {"../" + pick->outputs[0].rel, "good", "ok", pick->patient, "\"id\": " + json_str(pick->id), want});
      }
      std::string csv = "slide,patient,label,cohort\n";
      for (const auto& b : bad_files) csv += b.file + "," + b.patient + "," + std::to_string(b.label) + ",bad\n";
      write_file(bd / "manifest.csv", csv);
    }

    // layout.json
    std::ostringstream j;
    j << "{\n";
    j << "  \"generator\": {\"name\": \"make_synthetic_cohort\", \"format_version\": 1, \"seed\": " << o.seed
      << ",\n    \"params\": {\"slides\": " << o.slides << ", \"external\": " << o.external
      << ", \"width\": " << o.width << ", \"height\": " << o.height << ", \"mpp\": " << num(o.mpp)
      << ", \"without_mpp\": " << o.without_mpp << ", \"patches_per_class\": " << o.patches_per_class
      << ", \"patch_size\": " << o.patch_size << ", \"bad_inputs\": " << (o.bad_inputs ? "true" : "false")
      << (o.subtle ? ", \"subtle\": true" : "")
      << ", \"tile_size\": " << kTile << ", \"jpeg_quality\": " << kJpegQuality << ", \"app_mag\": " << num(app_mag(o))
      << "}},\n";
    j << "  \"conventions\": {\n"
         "    \"coordinates\": \"level-0 pixels; x to the right, y down; paths are relative to this file's folder\",\n"
         "    \"fill_rule\": \"pixel (x,y) is inside a polygon when its centre (x+0.5,y+0.5) is inside by the even-odd "
         "rule; along a pixel row, a boundary crossing at X covers the centres with X <= x+0.5 (left-closed, "
         "right-open); vertices are integers\",\n"
         "    \"tissue\": \"union of the pieces' polygons; pieces do not overlap; everything else is background "
         "(near-white: the stain's i0 with +-3 noise per channel, e.g. (242,240,244) in the training cohort, "
         "(232,228,236) in the external one)\",\n"
         "    \"regions\": \"painted in list order, later ones win, clipped to the tissue; kinds: normal (regular "
         "nuclei), tumour (label 1 only: dense, enlarged, irregular, dark nuclei), lymphoid (dense small dark "
         "nuclei)\",\n"
         "    \"label\": \"1 = the slide contains tumour regions\"\n"
         "  },\n";
    j << "  \"slides\": [";
    bool first = true;
    for (const auto* cohort : {&train, &external})
      for (const auto& s : *cohort) {
        j << (first ? "\n    " : ",\n    ") << slide_json(s, s.outputs.front(), "    ");
        first = false;
      }
    j << "\n  ],\n";
    j << "  \"patches\": {\"root\": \"patches\", \"classes\": [";
    for (size_t i = 0; i < classes.size(); ++i) j << (i ? ", " : "") << json_str(classes[i]);
    j << "], \"train_per_class\": " << per_split[0] << ", \"test_per_class\": " << per_split[1]
      << ", \"size\": " << o.patch_size
      << ", \"mpp\": 0.5, \"file_name\": \"<n, zero-padded to at least 3 digits>.<ext>\""
      << ", \"formats\": \"n % 10 == 3: .tif (uncompressed), n % 10 == 7: .jpg (Q 90), otherwise .png\"},\n";
    if (o.bad_inputs) {
      j << "  \"bad\": {\"dir\": \"bad\", \"manifest\": \"bad/manifest.csv\", \"files\": [";
      for (size_t i = 0; i < bad_files.size(); ++i) {
        const auto& b = bad_files[i];
        j << (i ? "," : "") << "\n    {\"file\": " << json_str(b.file) << ", \"kind\": " << json_str(b.kind)
          << ", \"expect\": " << json_str(b.expect) << ", \"label\": " << b.label
          << (b.extra.empty() ? "" : ",\n      " + b.extra) << "}";
      }
      j << "\n  ]}\n";
    } else {
      j << "  \"bad\": null\n";
    }
    j << "}\n";
    write_file(o.out / "layout.json", j.str());
    std::cout << kProgram << ": wrote " << o.out.string() << " in " << num(std::round(seconds() * 100) / 100) << " s\n";
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": error: " << e.what() << "\n";
    vips_shutdown();
    return 1;
  }
  vips_shutdown();
  return 0;
}
