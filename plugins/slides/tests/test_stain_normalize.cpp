// Stain normalisation (stain_normalize): parity with the numpy reference of tools/parity/make_stain_fixtures.py
// (tests/fixtures/stain), its errors, and the per-slide fit on the test cohort.
//
// Tolerance: every output value within 1 grey level of numpy's, and at most 1% of them off by one. Both compute
// in double precision; what is left is rounding of values that land within ~1e-9 of .5 (numpy rounds half to
// even, the stage half away from zero) and last-bit differences of exp/log/pow between libm and numpy.
#include <catch2/catch.hpp>
#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "histoflow/harness.hpp"
#include "histoflow/png.hpp"
#include "histoflow/slides/image_decode.hpp"
#include "histoflow/slides/slide_reader.hpp"
#include "once_per_key.hpp"
#include "stain_methods.hpp"
#include "support/fresh_folder.hpp"
#include "support/graph_helpers.hpp"
#include "tissue_mask.hpp"

using namespace histoflow;
using namespace histoflow::slides;
using namespace histoflow::testing;

namespace {

const std::filesystem::path kFixtures = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests" / "fixtures" / "stain";
const std::filesystem::path kCohort = HISTOFLOW_TEST_COHORT;

const nlohmann::json& cases() {
  static const nlohmann::json json = [] {
    std::ifstream in(kFixtures / "cases.json");
    return nlohmann::json::parse(in);
  }();
  return json;
}

PacketPtr tile_packet(const RgbImage& image, const std::string& item, const std::string& path) {
  Packet p;
  p.kind = "tile";
  p.provenance.item_id = item;
  p.provenance.sequence = 3;
  p.provenance.tile = TileCoord{128, 256, 0, image.width};
  p.attributes["path"] = path;
  p.attributes["label"] = std::int64_t{2};
  p.tensor = Tensor::zeros(DType::UInt8, {image.height, image.width, 3});
  std::copy(image.pixels.begin(), image.pixels.end(), p.tensor.data<std::uint8_t>());
  return make_packet(std::move(p));
}

RgbImage image_of(const PacketPtr& packet) {
  const Tensor& t = packet->tensor;
  RgbImage image{static_cast<int>(t.shape()[1]), static_cast<int>(t.shape()[0]), {}};
  const auto px = t.span<std::uint8_t>();
  image.pixels.assign(px.begin(), px.end());
  return image;
}

struct Difference {
  int max = 0;
  std::size_t off = 0;  // values that differ at all
};

Difference difference(const RgbImage& a, const RgbImage& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  Difference d;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const int diff = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    d.max = std::max(d.max, diff);
    d.off += diff != 0;
  }
  return d;
}

std::string snippet(const std::string& method, const std::filesystem::path& reference, const std::string& more = "") {
  return "use = \"stain_normalize\"\nmethod = \"" + method + "\"\nreference = \"" + reference.string() + "\"\n" + more;
}

std::string toml_params(const nlohmann::json& params) {
  std::string text;
  for (const auto& [name, value] : params.items()) text += name + " = " + value.dump() + "\n";
  return text;
}

// A tissue-rich region of a cohort slide, read at level 0, and the slide's thumbnail tissue pixels as the stage
// gathers them for fit = "slide".
struct SlideSample {
  RgbImage tile;
  std::vector<std::uint8_t> tissue_pixels;
};

SlideSample sample_slide(const std::filesystem::path& slide, int fit_width, int tile_size) {
  SlideReader reader(slide);
  const RgbImage thumbnail = reader.thumbnail(fit_width);
  const Mask mask = tissue_mask(thumbnail, TissueMaskOptions{}).mask;
  SlideSample sample;
  for (std::size_t i = 0; i < mask.data.size(); ++i)
    if (mask.data[i]) sample.tissue_pixels.insert(sample.tissue_pixels.end(), &thumbnail.pixels[3 * i], &thumbnail.pixels[3 * i + 3]);
  // The thumbnail pixel deepest inside the tissue (all of its 9x9 neighbourhood in the mask) locates the tile.
  const double scale = static_cast<double>(reader.properties().levels[0].width) / thumbnail.width;
  for (int y = 4; y + 4 < mask.height && sample.tile.pixels.empty(); ++y)
    for (int x = 4; x + 4 < mask.width && sample.tile.pixels.empty(); ++x) {
      bool inside = true;
      for (int dy = -4; dy <= 4 && inside; ++dy)
        for (int dx = -4; dx <= 4 && inside; ++dx) inside = mask.at(x + dx, y + dy) != 0;
      if (inside) sample.tile = reader.read_region(static_cast<std::int64_t>(x * scale), static_cast<std::int64_t>(y * scale), 0, tile_size, tile_size);
    }
  REQUIRE_FALSE(sample.tile.pixels.empty());
  return sample;
}

}  // namespace

TEST_CASE("stain_normalize matches the numpy reference of Macenko and Reinhard", "[slides][stain]") {
  shared_loader();
  ensure_vips();
  REQUIRE(cases()["cases"].size() >= 8);
  for (const auto& c : cases()["cases"]) {
    INFO(c.dump());
    StageHarness h(snippet(c["method"], kFixtures / "reference.png", toml_params(c["params"])));
    const RgbImage input = decode_rgb(kFixtures / c["input"].get<std::string>());
    const RgbImage expected = decode_rgb(kFixtures / c["expected"].get<std::string>());
    const auto out = h.push(tile_packet(input, "case", "/nowhere/slide.svs"));
    REQUIRE(out.size() == 1);
    CHECK(out[0]->kind == "tile");
    CHECK(out[0]->provenance.item_id == "case");
    CHECK(out[0]->provenance.tile->x == 128);
    CHECK(*out[0]->attribute<std::int64_t>("label") == 2);
    const RgbImage got = image_of(out[0]);
    const Difference d = difference(got, expected);
    CHECK(d.max <= 1);
    CHECK(d.off <= got.pixels.size() / 100);
    if (!c["fitted"].get<bool>()) {
      CHECK(difference(got, input).max == 0);  // too little tissue: unchanged, exactly
    } else {
      CHECK(difference(got, input).max > 10);  // the fixtures' tiles are stained differently from the reference
    }
  }
}

TEST_CASE("stain fits of the reference image match numpy's", "[slides][stain]") {
  ensure_vips();
  const RgbImage reference = decode_rgb(kFixtures / "reference.png");
  const std::size_t pixels = reference.pixels.size() / 3;
  const auto& want = cases()["reference_fit"];

  const StainFitResult macenko = fit_stains(StainMethod::Macenko, reference.pixels.data(), pixels, StainOptions{});
  REQUIRE(macenko.fit);
  const auto& stains = std::get<MacenkoStains>(*macenko.fit);
  for (int k = 0; k < 3; ++k) {
    CHECK(stains.vectors[0][k] == Approx(want["macenko"]["stains_h"][k].get<double>()).margin(1e-9));
    CHECK(stains.vectors[1][k] == Approx(want["macenko"]["stains_e"][k].get<double>()).margin(1e-9));
  }
  for (int k = 0; k < 2; ++k)
    CHECK(stains.max_concentrations[k] == Approx(want["macenko"]["max_concentrations"][k].get<double>()).margin(1e-9));

  const StainFitResult reinhard = fit_stains(StainMethod::Reinhard, reference.pixels.data(), pixels, StainOptions{});
  REQUIRE(reinhard.fit);
  const auto& stats = std::get<ReinhardStats>(*reinhard.fit);
  for (int k = 0; k < 3; ++k) {
    CHECK(stats.mean[k] == Approx(want["reinhard"]["mean"][k].get<double>()).margin(1e-9));
    CHECK(stats.std[k] == Approx(want["reinhard"]["std"][k].get<double>()).margin(1e-9));
  }
}

TEST_CASE("stain building blocks: percentiles and CIELAB", "[slides][stain]") {
  // numpy.percentile([4, 1, 3, 2], q) interpolates at rank 3q/100 of the sorted values.
  CHECK(percentile({4, 1, 3, 2}, 25) == Approx(1.75));
  CHECK(percentile({4, 1, 3, 2}, 0) == 1);
  CHECK(percentile({4, 1, 3, 2}, 100) == 4);
  CHECK(percentile({5}, 99) == 5);

  const std::uint8_t white[3] = {255, 255, 255}, red[3] = {255, 0, 0}, grey[3] = {119, 119, 119};
  const auto w = srgb_to_lab(white);
  CHECK(w[0] == Approx(100).margin(1e-9));
  CHECK(w[1] == Approx(0).margin(1e-9));
  CHECK(w[2] == Approx(0).margin(1e-9));
  const auto r = srgb_to_lab(red);  // the textbook value of sRGB red under D65
  CHECK(r[0] == Approx(53.24).margin(0.01));
  CHECK(r[1] == Approx(80.09).margin(0.01));
  CHECK(r[2] == Approx(67.20).margin(0.01));
  CHECK(srgb_to_lab(grey)[0] == Approx(50.03).margin(0.01));
  // Every 8-bit colour on a coarse lattice survives the round trip.
  double worst = 0;
  for (int cr = 0; cr < 256; cr += 15)
    for (int cg = 0; cg < 256; cg += 15)
      for (int cb = 0; cb < 256; cb += 15) {
        const std::uint8_t rgb[3] = {std::uint8_t(cr), std::uint8_t(cg), std::uint8_t(cb)};
        const auto back = lab_to_srgb(srgb_to_lab(rgb));
        for (int k = 0; k < 3; ++k) worst = std::max(worst, std::abs(back[k] * 255 - rgb[k]));
      }
  CHECK(worst < 1e-6);
}

TEST_CASE("stain_normalize: bad method, missing or unusable reference, wrong tiles are clear errors", "[slides][stain]") {
  shared_loader();
  ensure_vips();
  const auto dir = fresh_folder("stain-errors");
  const auto reference = kFixtures / "reference.png";

  CHECK_THROWS_WITH(StageHarness(snippet("vahadane", reference)), Catch::Contains("method") && Catch::Contains("vahadane"));
  CHECK_THROWS_WITH(StageHarness("use = \"stain_normalize\"\nmethod = \"macenko\""), Catch::Contains("reference"));
  CHECK_THROWS_WITH(StageHarness(snippet("macenko", dir / "missing.png")), Catch::Contains("missing.png"));

  // Readable, but nothing to fit on: blank glass.
  RgbImage blank{32, 32, std::vector<std::uint8_t>(32 * 32 * 3, 250)};
  write_png(dir / "blank.png", blank);
  for (const std::string method : {"macenko", "reinhard"}) {
    INFO(method);
    CHECK_THROWS_WITH(StageHarness(snippet(method, dir / "blank.png")),
                      Catch::Contains("blank.png") && Catch::Contains("cannot be fitted") && Catch::Contains("0 of 1024 pixels are stained"));
  }
  // Not an image at all.
  std::ofstream(dir / "notes.png") << "not a PNG";
  CHECK_THROWS_WITH(StageHarness(snippet("reinhard", dir / "notes.png")), Catch::Contains("notes.png"));

  // A tile that is not RGB uint8 fails as an item, naming it.
  StageHarness h(snippet("macenko", reference));
  Packet gray;
  gray.kind = "tile";
  gray.provenance.item_id = "gray-item";
  gray.tensor = Tensor::zeros(DType::UInt8, {8, 8, 1});
  CHECK_THROWS_WITH(h.push(make_packet(std::move(gray))), Catch::Contains("gray-item") && Catch::Contains("[H, W, 3]"));
}

TEST_CASE("stain_normalize fit = slide uses the slide's tissue, for every tile of the slide", "[slides][stain]") {
  shared_loader();
  ensure_vips();
  const auto dir = fresh_folder("stain-slide");
  const auto slide = kCohort / "slides" / "train_001.tiff";
  constexpr int kFitWidth = 256;
  const SlideSample sample = sample_slide(slide, kFitWidth, 48);
  REQUIRE(sample.tissue_pixels.size() / 3 > 1000);

  // Reinhard towards a reference made of exactly the slide's tissue pixels: the slide's fit equals the
  // reference's, so every tile of the slide comes back unchanged (up to CIELAB round-trip rounding). A fit on
  // the tile itself, or on other pixels, would move it.
  write_png(dir / "slide_tissue.png", RgbImage{static_cast<int>(sample.tissue_pixels.size() / 3), 1, sample.tissue_pixels});
  const std::string width = "slide_fit_width = " + std::to_string(kFitWidth) + "\n";
  StageHarness per_slide(snippet("reinhard", dir / "slide_tissue.png", "fit = \"slide\"\n" + width));
  const auto same = per_slide.push(tile_packet(sample.tile, "train_001", slide.string()));
  REQUIRE(same.size() == 1);
  CHECK(difference(image_of(same[0]), sample.tile).max <= 1);
  // The slide itself as the reference (reference_fit = "slide"): fitted on the same tissue, the same identity.
  StageHarness slide_reference(snippet("reinhard", slide, "reference_fit = \"slide\"\nfit = \"slide\"\n" + width));
  CHECK(difference(image_of(slide_reference.push(tile_packet(sample.tile, "train_001", slide.string()))[0]), sample.tile).max <= 1);
  StageHarness per_tile(snippet("reinhard", dir / "slide_tissue.png", "fit = \"tile\"\n"));
  CHECK(difference(image_of(per_tile.push(tile_packet(sample.tile, "train_001", slide.string()))[0]), sample.tile).max > 1);

  // A nearly blank tile: no fit of its own, so fit = "tile" passes it unchanged, while fit = "slide" gives it
  // the slide's transform, like its neighbours.
  RgbImage pale{32, 32, {}};
  for (int i = 0; i < 32 * 32; ++i) pale.pixels.insert(pale.pixels.end(), {std::uint8_t(228 + i % 5), 222, std::uint8_t(230 + i % 3)});
  for (const std::string method : {"macenko", "reinhard"}) {
    INFO(method);
    StageHarness tile_fit(snippet(method, kFixtures / "reference.png"));
    StageHarness slide_fit(snippet(method, kFixtures / "reference.png", "fit = \"slide\"\n" + width));
    CHECK(difference(image_of(tile_fit.push(tile_packet(pale, "train_001", slide.string()))[0]), pale).max == 0);
    CHECK(difference(image_of(slide_fit.push(tile_packet(pale, "train_001", slide.string()))[0]), pale).max > 0);
    // The same tile tagged with another slide gets that slide's (different) fit.
    const auto a = image_of(slide_fit.push(tile_packet(sample.tile, "train_001", slide.string()))[0]);
    const auto b = image_of(slide_fit.push(tile_packet(sample.tile, "external", (kCohort / "external" / "slides" / "ext_000.tiff").string()))[0]);
    CHECK(difference(a, b).max > 0);
  }

  // A slide without tissue: each of its tiles is an error naming the slide.
  StageHarness h(snippet("macenko", kFixtures / "reference.png", "fit = \"slide\"\n" + width));
  for (int i = 0; i < 2; ++i)
    CHECK_THROWS_WITH(h.push(tile_packet(pale, "no_tissue", (kCohort / "bad" / "no_tissue.tiff").string())),
                      Catch::Contains("no_tissue") && Catch::Contains("cannot fit Macenko stains"));
}

TEST_CASE("per-slide fits are computed once per slide, however many threads ask", "[slides][stain]") {
  OncePerKey<int> fits;
  std::atomic<int> computed{0};
  std::vector<std::thread> threads;
  std::vector<int> seen(16);
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&, t] {
      const std::string key = t % 2 ? "slide-a" : "slide-b";
      seen[t] = *fits.get(key, [&] {
        ++computed;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // others arrive while it computes
        return t % 2 ? 1 : 2;
      });
    });
  for (auto& thread : threads) thread.join();
  CHECK(computed == 2);
  for (int t = 0; t < 16; ++t) CHECK(seen[t] == (t % 2 ? 1 : 2));

  // A failure is remembered: the same error for every asker, no second attempt.
  int attempts = 0;
  const auto failing = [&]() -> int {
    ++attempts;
    throw std::runtime_error("slide 'x': cannot fit");
  };
  CHECK_THROWS_WITH(fits.get("slide-x", failing), "slide 'x': cannot fit");
  CHECK_THROWS_WITH(fits.get("slide-x", failing), "slide 'x': cannot fit");
  CHECK(attempts == 1);
}
