#include "heatmaps.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "histoflow/atomic_file.hpp"
#include "histoflow/evaluation_common/svg_raster.hpp"
#include "histoflow/png.hpp"
#include "histoflow/svg_plot.hpp"
#include "histoflow/slides/resample.hpp"
#include "histoflow/slides/slide_reader.hpp"

namespace histoflow::mil {
namespace {

constexpr int kThumbnailWidth = 1024;
constexpr int kMontageTile = 128;

struct SlideAttention {
  std::vector<std::int64_t> coords;  // 2 per tile
  std::vector<double> attention;
  std::string setting, label, predicted;  // the slide's bag: its label and (fold-mean) prediction
  double probability = 0;                // of the predicted class
};

// Attention of each slide's tiles: from the bag's prediction, restricted to the slide's tiles; with the bag's
// label and predicted class (external bags: the mean of the fold models' probabilities).
void collect(const std::vector<Prediction>& predictions, const std::vector<Bag>& bags, bool average_folds,
             const std::vector<std::string>& class_names, std::map<std::string, SlideAttention>& out,
             const std::map<std::string, std::string>& paths) {
  std::map<std::size_t, std::vector<double>> sums, probability_sums;
  std::map<std::size_t, int> counts;
  for (const auto& p : predictions) {
    if (p.prediction.attention.empty()) continue;
    auto& sum = sums[p.bag];
    auto& probabilities = probability_sums[p.bag];
    if (!average_folds) sum.clear(), probabilities.clear(), counts[p.bag] = 0;
    sum.resize(p.prediction.attention.size(), 0.0);
    probabilities.resize(p.prediction.probabilities.size(), 0.0);
    for (std::size_t t = 0; t < sum.size(); ++t) sum[t] += p.prediction.attention[t];
    for (std::size_t c = 0; c < probabilities.size(); ++c) probabilities[c] += p.prediction.probabilities[c];
    ++counts[p.bag];
  }
  for (const auto& [b, sum] : sums) {
    const Bag& bag = bags[b];
    const auto& probabilities = probability_sums.at(b);
    const auto predicted = static_cast<std::size_t>(std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin());
    for (std::size_t t = 0; t < sum.size(); ++t) {
      const std::string& slide = bag.slides[bag.tile_slide[t]];
      if (!paths.count(slide)) continue;
      auto& s = out[slide];
      s.coords.push_back(bag.coords[2 * t]);
      s.coords.push_back(bag.coords[2 * t + 1]);
      s.attention.push_back(sum[t] / counts.at(b));
      s.setting = average_folds ? "external slide, fold-model mean" : "in-domain slide, its test fold's model";
      s.label = class_names.at(static_cast<std::size_t>(bag.label));
      s.predicted = class_names.at(predicted);
      s.probability = probabilities.empty() ? 0 : probabilities[predicted] / counts.at(b);
    }
  }
}

std::int64_t tile_extent(const std::vector<std::int64_t>& coords) {
  // The grid step: the smallest positive difference between tile x (or y) positions.
  std::int64_t step = 0;
  for (int axis = 0; axis < 2; ++axis) {
    std::vector<std::int64_t> v;
    for (std::size_t i = axis; i < coords.size(); i += 2) v.push_back(coords[i]);
    std::sort(v.begin(), v.end());
    for (std::size_t i = 1; i < v.size(); ++i)
      if (v[i] > v[i - 1] && (step == 0 || v[i] - v[i - 1] < step)) step = v[i] - v[i - 1];
  }
  return step > 0 ? step : 224;
}

void render_slide(const std::filesystem::path& directory, const std::string& slide_id, const std::string& path,
                  const SlideAttention& a, int top_k, const std::string& title) {
  const slides::SlideReader slide(path);
  const slides::SlideProperties properties = slide.properties();
  const std::int64_t width = properties.levels[0].width;
  // The thumbnail: from the coarsest level still kThumbnailWidth wide, shrunk to that width.
  RgbImage overlay = slide.thumbnail(kThumbnailWidth);
  const int thumb_w = overlay.width, thumb_h = overlay.height;
  const double scale = static_cast<double>(thumb_w) / static_cast<double>(width);

  const auto [low, high] = std::minmax_element(a.attention.begin(), a.attention.end());
  const double range = *high - *low;
  const std::int64_t extent = tile_extent(a.coords);
  for (std::size_t t = 0; t < a.attention.size(); ++t) {
    const auto colour = svg::heat_colour(range > 0 ? (a.attention[t] - *low) / range : 1.0);
    const int x0 = static_cast<int>(a.coords[2 * t] * scale), y0 = static_cast<int>(a.coords[2 * t + 1] * scale);
    const int x1 = static_cast<int>((a.coords[2 * t] + extent) * scale), y1 = static_cast<int>((a.coords[2 * t + 1] + extent) * scale);
    for (int y = std::max(0, y0); y < std::min(thumb_h, std::max(y1, y0 + 1)); ++y)
      for (int x = std::max(0, x0); x < std::min(thumb_w, std::max(x1, x0 + 1)); ++x) {
        std::uint8_t* p = overlay.at(x, y);
        for (int c = 0; c < 3; ++c) p[c] = static_cast<std::uint8_t>((p[c] + colour[c]) / 2);
      }
  }
  const std::string verdict = "label " + a.label + " \u00b7 predicted " + a.predicted + " (p = " + svg::fixed(a.probability, 3) + ")" +
                              (a.label == a.predicted ? "" : " \u00b7 misclassified");
  svg::ImageFigure figure{slide_id + ": " + title, {verdict, a.setting + "; " + std::to_string(a.attention.size()) +
                                                                " tiles tinted half-way by attention (min-max over the slide)"},
                          encode_png(overlay, 6), overlay.width, overlay.height, static_cast<double>(overlay.width),
                          "attention", *low, *high};
  evaluation_common::write_svg_as_png(directory / (slide_id + ".png"), svg::image_figure(figure));

  // The top-k tiles, read at the level nearest kMontageTile pixels per tile, in one row.
  std::vector<std::size_t> order(a.attention.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return a.attention[x] > a.attention[y]; });
  const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(top_k), order.size());
  const int tile_level = slide.best_level_for_downsample(static_cast<double>(extent) / kMontageTile);
  const double downsample = properties.levels[tile_level].downsample;
  const auto read_extent = std::max<std::int64_t>(1, std::llround(static_cast<double>(extent) / downsample));
  RgbImage montage{static_cast<int>(k) * kMontageTile, kMontageTile,
                           std::vector<std::uint8_t>(k * kMontageTile * kMontageTile * 3, 255)};
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t t = order[i];
    const auto tile = slides::resize_rgb(
        slide.read_region(a.coords[2 * t], a.coords[2 * t + 1], tile_level, read_extent, read_extent), kMontageTile,
        kMontageTile);
    for (int y = 0; y < kMontageTile; ++y)
      std::copy_n(tile.at(0, y), kMontageTile * 3, montage.at(static_cast<int>(i) * kMontageTile, y));
  }
  std::string values = "attention, left to right:";
  for (std::size_t i = 0; i < k; ++i) values += " " + svg::fixed(a.attention[order[i]], 4);
  svg::ImageFigure top;
  top.title = slide_id + ": the " + std::to_string(k) + " most attended tiles";
  top.caption = {verdict, values};
  top.png = encode_png(montage, 6);
  top.image_width = montage.width, top.image_height = montage.height;
  top.display_width = static_cast<double>(std::max(montage.width, 384));
  evaluation_common::write_svg_as_png(directory / (slide_id + "_top" + std::to_string(k) + ".png"), svg::image_figure(top));
}

}  // namespace

void write_heatmaps(const std::filesystem::path& directory, const MilRun& run, int top_k,
                    const std::function<void(std::size_t done, std::size_t total)>& on_slide) {
  std::map<std::string, std::string> paths;
  for (const auto* bags : {run.bags, run.external})
    for (const auto& bag : *bags)
      for (const auto& slide : bag.slides) paths[slide] = "";
  for (const auto& [slide, path] : run.slide_paths) if (paths.count(slide)) paths[slide] = path;
  std::map<std::string, std::string> readable;
  for (const auto& [slide, path] : paths) if (!path.empty()) readable[slide] = path;
  std::map<std::string, SlideAttention> attention;
  collect(run.result->in_domain, *run.bags, false, run.class_names, attention, readable);
  collect(run.result->external, *run.external, true, run.class_names, attention, readable);
  std::string notes;
  std::size_t done = 0;
  for (const auto& [slide, a] : attention) {
    try {
      render_slide(directory, slide, readable.at(slide), a, top_k, run.method + " on " + run.encoder);
    } catch (const std::exception& e) {
      notes += "- `" + slide + "`: no heatmap: " + e.what() + "\n";
    }
    if (on_slide) on_slide(++done, attention.size());
  }
  for (const auto& [slide, path] : paths)
    if (path.empty()) notes += "- `" + slide + "`: no heatmap: the feature file names no slide_path\n";
  write_file_atomically(directory / "README.md",
                        "# Attention heatmaps (" + run.method + ", stage `" + run.stage_id + "`)\n\n"
                        "`<slide>.png`: attention per tile over the thumbnail (blue low, red high; min-max per slide, the colour "
                        "bar gives the range), titled with the slide, its label and the prediction. "
                        "`<slide>_top<k>.png`: the most attended tiles, left to right, with their attention. In-domain slides: their test "
                        "fold's model; external slides: the mean over fold models.\n\n" +
                            (notes.empty() ? std::string("All slides rendered.\n") : "Not rendered:\n" + notes));
}

}  // namespace histoflow::mil
