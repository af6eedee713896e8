// Slides in, end to end, on a generated cohort whose tissue layout is known exactly (layout.json).
#include <openslide/openslide.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "histoflow/harness.hpp"
#include "histoflow/slides/slide_reader.hpp"
#include "openslide_pool.hpp"
#include "slide_properties.hpp"
#include "support/fresh_folder.hpp"
#include "support/graph_helpers.hpp"
#include "support/test_stages.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

const std::filesystem::path kCohort = HISTOFLOW_TEST_COHORT;

const nlohmann::json& layout() {
  static const nlohmann::json json = [] {
    std::ifstream in(kCohort / "layout.json");
    return nlohmann::json::parse(in);
  }();
  return json;
}

using Polygon = std::vector<std::pair<double, double>>;

bool inside(const Polygon& polygon, double x, double y) {
  bool in = false;
  for (std::size_t i = 0, j = polygon.size() - 1; i < polygon.size(); j = i++) {
    const auto [xi, yi] = polygon[i];
    const auto [xj, yj] = polygon[j];
    if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) in = !in;
  }
  return in;
}

std::vector<Polygon> pieces_of(const nlohmann::json& slide) {
  std::vector<Polygon> pieces;
  for (const auto& piece : slide["pieces"]) {
    Polygon p;
    for (const auto& v : piece["polygon"]) p.emplace_back(v[0].get<double>(), v[1].get<double>());
    pieces.push_back(std::move(p));
  }
  return pieces;
}

// Fraction of a tile covered by the slide's true tissue, from a 16 x 16 grid of sample points.
double true_coverage(const std::vector<Polygon>& pieces, double x0, double y0, double extent) {
  int hits = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      const double x = x0 + (i + 0.5) * extent / 16, y = y0 + (j + 0.5) * extent / 16;
      for (const auto& p : pieces)
        if (inside(p, x, y)) {
          ++hits;
          break;
        }
    }
  return hits / 256.0;
}

PacketPtr slide_packet(const std::filesystem::path& path, const std::string& id) {
  Packet p;
  p.kind = "slide";
  p.provenance.item_id = id;
  p.attributes["path"] = path.string();
  p.attributes["slide_id"] = id;
  return make_packet(std::move(p));
}

const nlohmann::json* slide_entry(const std::string& id) {
  for (const auto& s : layout()["slides"])
    if (s["id"] == id) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("tiles and their coordinates follow the known tissue layout of every slide", "[slides][tiling]") {
  shared_loader();
  StageHarness tiler("use = \"tissue_tiler\"\nassume_mpp = 0.5\nsize = 224\nmpp = 0.5\nmin_tissue = 0.5");
  std::size_t slides = 0;
  for (const auto& slide : layout()["slides"]) {
    if (slide["cohort"] != "train") continue;
    ++slides;
    const std::string id = slide["id"];
    INFO("slide " << id);
    const auto out = tiler.push(slide_packet(kCohort / slide["path"].get<std::string>(), id));
    REQUIRE(out.size() >= 2);
    REQUIRE(tiler.ports()[0] == 1);  // the grid comes first
    CHECK(*out[0]->attribute<std::string>("vendor") == "aperio");
    CHECK(out[0]->attribute<std::string>("levels")->rfind(std::to_string(slide["width"].get<int>()) + "x", 0) == 0);
    const Tensor& grid = out[0]->tensor;
    const auto n = static_cast<std::size_t>(grid.shape()[0]);
    CHECK(out.size() == n + 1);
    std::set<std::pair<std::int64_t, std::int64_t>> emitted;
    const std::int64_t* xy = grid.data<std::int64_t>();
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(xy[2 * i] % 224 == 0);  // at 0.5 mpp on a 0.5 mpp slide a tile is 224 level-0 pixels
      CHECK(xy[2 * i + 1] % 224 == 0);
      emitted.insert({xy[2 * i], xy[2 * i + 1]});
      // The tile packets say the same, in the same (row-major) order.
      CHECK(out[i + 1]->provenance.tile->x == xy[2 * i]);
      CHECK(out[i + 1]->provenance.tile->y == xy[2 * i + 1]);
    }
    const auto pieces = pieces_of(slide);
    const std::int64_t width = slide["width"], height = slide["height"];
    std::size_t expected = 0, disagreements = 0;
    for (std::int64_t y = 0; y + 224 <= height; y += 224)
      for (std::int64_t x = 0; x + 224 <= width; x += 224) {
        const double coverage = true_coverage(pieces, static_cast<double>(x), static_cast<double>(y), 224);
        const bool kept = emitted.count({x, y}) > 0;
        expected += coverage >= 0.5 ? 1 : 0;
        // Clear cases must agree exactly; only tiles near the 50% boundary may go either way.
        if (coverage > 0.75) CHECK(kept);
        if (coverage < 0.25) CHECK_FALSE(kept);
        disagreements += (kept != (coverage >= 0.5)) ? 1 : 0;
      }
    INFO("expected " << expected << ", emitted " << n << ", disagreements " << disagreements);
    CHECK(expected > 20);
    CHECK(static_cast<double>(disagreements) <= 0.06 * static_cast<double>(expected));
  }
  CHECK(slides >= 4);
}

TEST_CASE("tiling is deterministic and tile pixels equal OpenSlide's own read", "[slides][reading]") {
  shared_loader();
  const auto& slide = layout()["slides"][2];
  const auto path = kCohort / slide["path"].get<std::string>();
  StageHarness a("use = \"tissue_tiler\"\nassume_mpp = 0.5"), b("use = \"tissue_tiler\"\nassume_mpp = 0.5");
  const auto first = a.push(slide_packet(path, "s")), second = b.push(slide_packet(path, "s"));
  REQUIRE(first.size() == second.size());
  const auto* ga = first[0]->tensor.data<std::int64_t>();
  const auto* gb = second[0]->tensor.data<std::int64_t>();
  CHECK(std::equal(ga, ga + first[0]->tensor.numel(), gb));

  StageHarness reader("use = \"tile_reader\"");
  const PacketPtr& ref = first[first.size() / 2];
  const auto tiles = reader.push(ref);
  REQUIRE(tiles.size() == 1);
  const Tensor& pixels = tiles[0]->tensor;
  REQUIRE(pixels.shape() == std::vector<std::int64_t>{224, 224, 3});
  openslide_t* osr = openslide_open(path.c_str());
  REQUIRE(osr);
  std::vector<std::uint32_t> argb(224 * 224);
  openslide_read_region(osr, argb.data(), ref->provenance.tile->x, ref->provenance.tile->y, 0, 224, 224);
  openslide_close(osr);
  const auto* rgb = pixels.data<std::uint8_t>();
  int mismatches = 0;
  for (std::size_t i = 0; i < argb.size(); ++i)
    mismatches += (rgb[3 * i] != ((argb[i] >> 16) & 0xff)) + (rgb[3 * i + 1] != ((argb[i] >> 8) & 0xff)) +
                  (rgb[3 * i + 2] != (argb[i] & 0xff));
  CHECK(mismatches == 0);
}

TEST_CASE("resized tiles keep the mean colour of the region they cover", "[slides][reading]") {
  shared_loader();
  const auto& slide = layout()["slides"][3];
  const auto path = kCohort / slide["path"].get<std::string>();
  // 0.75 mpp on a 0.5 mpp slide: read 336 level-0 pixels, shrink to 224 with area averaging.
  StageHarness tiler("use = \"tissue_tiler\"\nassume_mpp = 0.5\nmpp = 0.75");
  const auto out = tiler.push(slide_packet(path, "s"));
  const PacketPtr& ref = out[out.size() / 2];
  CHECK(*ref->attribute<std::int64_t>("read_size") == 336);
  StageHarness reader("use = \"tile_reader\"");
  const auto tile = reader.push(ref)[0];
  openslide_t* osr = openslide_open(path.c_str());
  std::vector<std::uint32_t> argb(336 * 336);
  openslide_read_region(osr, argb.data(), ref->provenance.tile->x, ref->provenance.tile->y, 0, 336, 336);
  openslide_close(osr);
  double source_mean = 0, tile_mean = 0;
  for (auto p : argb) source_mean += ((p >> 16) & 0xff) + ((p >> 8) & 0xff) + (p & 0xff);
  for (auto v : tile->tensor.span<std::uint8_t>()) tile_mean += v;
  CHECK(tile_mean / (224.0 * 224 * 3) == Approx(source_mean / (336.0 * 336 * 3)).margin(0.5));
}

TEST_CASE("mpp: missing without a fallback fails naming the slide, manifest and assume_mpp supply it", "[slides][mpp]") {
  shared_loader();
  const nlohmann::json* without = nullptr;
  for (const auto& s : layout()["slides"])
    if (s["mpp"].is_null() && s["cohort"] == "train") without = &s;
  REQUIRE(without);
  const auto path = kCohort / (*without)["path"].get<std::string>();
  StageHarness strict("use = \"tissue_tiler\"");
  CHECK_THROWS_WITH(strict.push(slide_packet(path, "nompp")),
                    Catch::Contains("slide 'nompp' has no resolution") && Catch::Contains("assume_mpp"));
  Packet with_mpp = *slide_packet(path, "nompp");
  with_mpp.attributes["mpp"] = 0.5;
  CHECK(strict.push(make_packet(std::move(with_mpp))).size() > 1);
  StageHarness assumed("use = \"tissue_tiler\"\nassume_mpp = 0.5");
  CHECK(assumed.push(slide_packet(path, "nompp")).size() > 1);
}

TEST_CASE("masks: a PNG over the thumbnail and QuPath GeoJSON in level-0 coordinates", "[slides][masks]") {
  shared_loader();
  const auto out = fresh_folder("masks");
  const auto& slide = layout()["slides"][2];
  StageHarness tiler("use = \"tissue_tiler\"\nassume_mpp = 0.5\nwrite_masks = true", out);
  tiler.push(slide_packet(kCohort / slide["path"].get<std::string>(), "s2"));
  CHECK(std::filesystem::file_size(out / "masks" / "s2.png") > 100);
  std::ifstream in(out / "masks" / "s2.geojson");
  const auto geo = nlohmann::json::parse(in);
  CHECK(geo["type"] == "FeatureCollection");
  CHECK(geo["features"].size() == slide["pieces"].size());
  for (const auto& f : geo["features"]) {
    CHECK(f["properties"]["classification"]["name"] == "Tissue");
    for (const auto& v : f["geometry"]["coordinates"][0]) {
      CHECK(v[0].get<double>() >= 0);
      CHECK(v[0].get<double>() <= slide["width"].get<double>());
      CHECK(v[1].get<double>() <= slide["height"].get<double>());
    }
  }
}

TEST_CASE("bad inputs each end as an error record for that slide while the others finish", "[slides][bad]") {
  Observed::instance().reset();
  const auto out = fresh_folder("bad-slides");
  const GraphSpec spec = load_valid(graph_text(R"(
[stage.slides]
use = "slide_source"
manifest = ")" + (kCohort / "bad" / "manifest.csv").string() + R"("
on_missing = "skip"
cohort_column = "cohort"
[stage.tiles]
use = "tissue_tiler"
input = "slides"
[stage.read]
use = "tile_reader"
input = "tiles"
[stage.sink]
use = "test_sink"
input = "read"
release = false
)", out, 4));
  const RunResult result = run_quietly(spec);
  CHECK(result.status == RunStatus::CompletedWithErrors);
  std::map<std::string, std::string> by_item;
  for (const auto& e : result.errors) {
    const std::string key = e.item.empty() ? e.message : e.item;
    by_item[key] += e.message + "\n";
  }
  const auto error_for = [&](const std::string& id) {
    for (const auto& [key, message] : by_item)
      if (key.find(id) != std::string::npos) return message;
    return std::string();
  };
  CHECK_THAT(error_for("missing"), Catch::Contains("file not found") && Catch::Contains("skipped"));
  CHECK_THAT(error_for("empty"), Catch::Contains("the file is empty"));
  CHECK_THAT(error_for("not_a_slide"), Catch::Contains("not a slide format"));
  CHECK_FALSE(error_for("truncated").empty());
  CHECK_THAT(error_for("no_tissue"), Catch::Contains("no tissue tile"));
  CHECK_THAT(error_for("zero_mpp"), Catch::Contains("implausible resolution of 0 microns per pixel"));
  CHECK_THAT(error_for("absurd_mpp"), Catch::Contains("implausible resolution of 1000"));
  // The corrupt JPEG tile fails that tile, naming slide and position; its other tiles are read.
  const std::string corrupt = error_for("corrupt_tile");
  CHECK_THAT(corrupt, Catch::Contains("cannot read the tile at ("));
  std::map<std::string, std::size_t> tiles_per_slide;
  for (const auto& s : Observed::instance().seen("sink")) ++tiles_per_slide[s.item];
  CHECK(tiles_per_slide["corrupt_tile"] > 10);
  // Both good slides finished completely (no error mentions them).
  std::size_t good = 0;
  for (const auto& [item, count] : tiles_per_slide)
    if (item.rfind("train_", 0) == 0) {
      ++good;
      CHECK(error_for(item).empty());
      CHECK(count > 20);
    }
  CHECK(good == 2);
}

TEST_CASE("patch folder: classes in stable order, every image labelled, unreadable ones recorded", "[slides][patches]") {
  shared_loader();
  const auto data = fresh_folder("patches");
  std::filesystem::copy(kCohort / "patches" / "test", data / "test", std::filesystem::copy_options::recursive);
  // One broken file among them.
  std::filesystem::path first_class;
  for (const auto& d : std::filesystem::directory_iterator(data / "test"))
    if (first_class.empty() || d.path() < first_class) first_class = d.path();
  std::ofstream(first_class / "zz_broken.png") << "this is not a PNG";

  const auto out = fresh_folder("patches-out");
  StageHarness source("use = \"patch_folder\"\nroot = \"" + (data / "test").string() + "\"", out);
  std::map<std::string, std::int64_t> label_of_class;
  std::size_t images = 0, failures = 0;
  for (bool more = true; more;) {
    try {
      const auto step = source.generate_one();
      more = step.more;
      for (const auto& p : step.packets) {
        ++images;
        CHECK(p->tensor.dim() == 3);
        CHECK(p->tensor.shape()[2] == 3);
        const std::string cls = *p->attribute<std::string>("class");
        const std::int64_t label = *p->attribute<std::int64_t>("label");
        if (label_of_class.count(cls)) CHECK(label_of_class[cls] == label);  // stable within the run
        label_of_class[cls] = label;
        CHECK(p->provenance.item_id.rfind(cls + "/", 0) == 0);
      }
    } catch (const std::exception& e) {
      ++failures;  // the source already moved past the broken file
      CHECK_THAT(e.what(), Catch::Contains("zz_broken.png"));
    }
  }
  CHECK(failures == 1);
  std::size_t expected = 0;
  for (const auto& d : std::filesystem::directory_iterator(kCohort / "patches" / "test"))
    expected += static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(d.path()), {}));
  CHECK(images == expected);
  std::ifstream classes_file(out / "under_test_classes.json");
  const auto classes = nlohmann::json::parse(classes_file)["classes"];
  REQUIRE(classes.size() >= 4);
  CHECK(std::is_sorted(classes.begin(), classes.end()));
  for (std::size_t i = 0; i < classes.size(); ++i) CHECK(label_of_class[classes[i].get<std::string>()] == static_cast<std::int64_t>(i));
}

TEST_CASE("the handle pool reuses handles, closes the least recently used slides, and names failures", "[slides][pool]") {
  slides::SlidePool pool(2, 1);
  std::vector<std::filesystem::path> paths;
  for (const auto& s : layout()["slides"])
    if (s["cohort"] == "train") paths.push_back(kCohort / s["path"].get<std::string>());
  REQUIRE(paths.size() >= 3);
  for (int i = 0; i < 50; ++i) {
    auto a = pool.acquire(paths[0]);
    auto b = pool.acquire(paths[0]);  // concurrent users share the slide's handle
    CHECK(a.get() == b.get());
  }
  CHECK(pool.opens() == 1);
  { auto c = pool.acquire(paths[1]); }
  { auto d = pool.acquire(paths[2]); }  // a third slide: the least recently used one is closed
  { auto e = pool.acquire(paths[0]); }
  CHECK(pool.opens() == 4);
  CHECK_THROWS_WITH(pool.acquire(kCohort / "bad" / "not_a_slide.svs"),
                    Catch::Contains("not_a_slide.svs") && Catch::Contains("not a slide format"));
  CHECK_THROWS_WITH(pool.acquire(kCohort / "bad" / "empty.tiff"), Catch::Contains("the file is empty"));
}

TEST_CASE("tile_reader closes a slide's handle after its last tile, not before", "[slides][pool]") {
  shared_loader();
  const auto path = kCohort / layout()["slides"][1]["path"].get<std::string>();
  StageHarness tiler("use = \"tissue_tiler\"\nassume_mpp = 0.5"), reader("use = \"tile_reader\"");
  const auto refs = tiler.push(slide_packet(path, "s"));  // the grid, then the tile references
  REQUIRE(refs.size() > 3);
  slides::SlidePool& pool = slides::SlidePool::shared();
  const std::uint64_t opened = pool.opens();
  for (std::size_t i = 1; i + 1 < refs.size(); ++i) reader.push(refs[i]);
  reader.push(refs[1]);  // a tile read twice counts twice: the slide's count is now complete
  CHECK(pool.opens() == opened);  // the tiler's handle, reused for every tile
  reader.push(refs[2]);  // the handle was closed after the count was reached: opened again
  CHECK(pool.opens() == opened + 1);
}

TEST_CASE("slide_tile_sampler: shuffled epochs over every tissue tile of the cohort, from the tiler's grids", "[slides][sampling]") {
  shared_loader();
  const auto out = fresh_folder("tile-sampler");
  // The tiles tissue_tiler finds on every slide of manifest.csv, as (slide, x, y).
  std::set<std::tuple<std::string, std::int64_t, std::int64_t>> tissue;
  StageHarness tiler("use = \"tissue_tiler\"\nassume_mpp = 0.5", out);
  for (const auto& slide : layout()["slides"]) {
    if (slide["cohort"] != "train") continue;  // the manifest's slides
    const auto grid = tiler.push(slide_packet(kCohort / slide["path"].get<std::string>(), slide["id"]));
    for (std::size_t i = 1; i < grid.size(); ++i)
      tissue.insert({slide["id"], grid[i]->provenance.tile->x, grid[i]->provenance.tile->y});
  }
  REQUIRE(tissue.size() > 100);
  const auto n = static_cast<std::int64_t>(tissue.size());
  const std::string snippet = "use = \"slide_tile_sampler\"\nmanifest = \"" + (kCohort / "manifest.csv").string() +
                              "\"\nassume_mpp = 0.5\nsamples = " + std::to_string(2 * n + 5);
  StageHarness sampler(snippet, out, 7);
  const auto samples = sampler.generate_all();
  REQUIRE(samples.size() == static_cast<std::size_t>(2 * n + 5));
  for (int epoch = 0; epoch < 2; ++epoch) {  // each epoch draws every tissue tile once
    std::set<std::tuple<std::string, std::int64_t, std::int64_t>> drawn;
    for (std::int64_t s = epoch * n; s < (epoch + 1) * n; ++s) {
      const auto& p = samples[static_cast<std::size_t>(s)];
      CHECK(p->provenance.sequence == static_cast<std::uint64_t>(s));
      CHECK(p->kind == "tile_ref");
      drawn.insert({p->provenance.item_id, p->provenance.tile->x, p->provenance.tile->y});
    }
    INFO("drawn " << drawn.size() << " of " << tissue.size());
    CHECK(drawn == tissue);
  }
  // Shuffled across slides, differently per epoch; the same seed gives the same stream.
  CHECK(samples[0]->provenance.item_id != samples[1]->provenance.item_id);
  bool same_order = true;
  for (std::int64_t s = 0; s < n; ++s)
    same_order &= samples[static_cast<std::size_t>(s)]->provenance.tile->x == samples[static_cast<std::size_t>(s + n)]->provenance.tile->x;
  CHECK_FALSE(same_order);
  StageHarness again(snippet, out, 7);  // grids from the cache this time
  const auto repeated = again.generate_all();
  for (std::size_t s = 0; s < samples.size(); ++s) {
    CHECK(repeated[s]->provenance.item_id == samples[s]->provenance.item_id);
    CHECK(repeated[s]->provenance.tile->x == samples[s]->provenance.tile->x);
  }
  // The references read as tiles.
  StageHarness reader("use = \"tile_reader\"");
  const auto tile = reader.push(samples[0]);
  REQUIRE(tile.size() == 1);
  CHECK(tile[0]->tensor.shape() == std::vector<std::int64_t>{224, 224, 3});
}

TEST_CASE("slide_tile_sampler: a manifest without a tissue tile stops the run, naming the manifest and slides", "[slides][sampling][bad]") {
  shared_loader();
  const auto out = fresh_folder("tile-sampler-bad");
  // Every slide of the cohort, asked for more tissue than any tile has.
  const std::string snippet = "use = \"slide_tile_sampler\"\nmanifest = \"" + (kCohort / "manifest.csv").string() +
                              "\"\nassume_mpp = 0.5\nsize = 2048\nmin_tissue = 1.0";
  CHECK_THROWS_WITH(StageHarness(snippet, out), Catch::Contains("no tissue tile in any of the") && Catch::Contains("manifest.csv") &&
                                                Catch::Contains("no tissue tile ("));
}

namespace {

// The corrupt-tile fixture tiled on the TIFF's own 256-pixel tile grid, so exactly one grid tile covers the
// corrupted TIFF tile: its references, and that tile's position from layout.json.
struct CorruptSlideTiles {
  std::filesystem::path path;
  std::vector<PacketPtr> refs;
  std::int64_t x = 0, y = 0;
};

CorruptSlideTiles corrupt_slide_tiles() {
  CorruptSlideTiles c;
  for (const auto& f : layout()["bad"]["files"])
    if (f["kind"] == "corrupt_tile") {
      c.path = kCohort / "bad" / f["file"].get<std::string>();
      c.x = f["corrupt_tile"]["x"];
      c.y = f["corrupt_tile"]["y"];
      REQUIRE(f["corrupt_tile"]["width"] == 256);
    }
  REQUIRE(!c.path.empty());
  StageHarness tiler("use = \"tissue_tiler\"\nassume_mpp = 0.5\nmpp = 0.5\nsize = 256\nmin_tissue = 0.25");
  const auto out = tiler.push(slide_packet(c.path, "corrupt"));
  for (std::size_t i = 0; i < out.size(); ++i)
    if (tiler.ports()[i] == 0) c.refs.push_back(out[i]);
  REQUIRE(*c.refs.front()->attribute<std::int64_t>("read_size") == 256);  // level-0 pixels: aligned with the TIFF tiles
  return c;
}

bool is_at(const PacketPtr& ref, std::int64_t x, std::int64_t y) { return ref->provenance.tile->x == x && ref->provenance.tile->y == y; }

}  // namespace

TEST_CASE("a tile that cannot be read never costs a readable tile read at the same time", "[slides][reading][skip_tile]") {
  // OpenSlide's error state is per handle and sticky, and threads share a slide's handle: while one thread fails
  // on the corrupt tile, another thread's read on that handle fails too. Its retry must not meet the corrupt
  // tile's own retry on a shared handle again (CI once lost a second tile that way).
  shared_loader();
  const CorruptSlideTiles slide = corrupt_slide_tiles();
  std::atomic<bool> done = false;
  std::atomic<int> corrupt_failed = 0, corrupt_read = 0;
  std::thread corrupt([&] {
    std::vector<std::uint8_t> rgb(256 * 256 * 3);
    while (!done) {
      try {  // Catch's assertions are not thread-safe: counted here, checked below
        slides::read_with_retry(slide.path, [&](const slides::SlideReader& r) { r.read_region(slide.x, slide.y, 0, 256, 256, rgb.data()); });
        ++corrupt_read;
      } catch (const slides::SlideReadError&) {
        ++corrupt_failed;
      }
    }
  });
  std::atomic<int> good_reads = 0, lost = 0;
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t)
    readers.emplace_back([&] {
      std::vector<std::uint8_t> rgb(256 * 256 * 3);
      for (int round = 0; round < 3; ++round)
        for (const auto& ref : slide.refs) {
          if (is_at(ref, slide.x, slide.y)) continue;
          try {
            slides::read_with_retry(slide.path, [&](const slides::SlideReader& r) {
              r.read_region(ref->provenance.tile->x, ref->provenance.tile->y, 0, 256, 256, rgb.data());
            });
            ++good_reads;
          } catch (const slides::SlideReadError&) {
            ++lost;
          }
        }
    });
  for (auto& r : readers) r.join();
  done = true;
  corrupt.join();
  INFO(good_reads << " readable tiles read while the corrupt one failed " << corrupt_failed << " times");
  CHECK(corrupt_read == 0);
  CHECK(corrupt_failed > 10);  // the reads really overlapped
  CHECK(lost == 0);
}

TEST_CASE("on_tile_error: skip_tile leaves out the unreadable tile and names it, fail_slide fails it", "[slides][reading][skip_tile]") {
  shared_loader();
  const CorruptSlideTiles slide = corrupt_slide_tiles();
  const auto n = static_cast<std::int64_t>(slide.refs.size());
  REQUIRE(std::count_if(slide.refs.begin(), slide.refs.end(), [&](const PacketPtr& r) { return is_at(r, slide.x, slide.y); }) == 1);

  SECTION("skip_tile: every other tile is read, the corrupt one goes to 'skipped' with the reason") {
    StageHarness reader("use = \"tile_reader\"\non_tile_error = \"skip_tile\"\nmax_skipped_fraction = 0.05");
    std::int64_t tiles = 0, skipped = 0;
    for (const auto& ref : slide.refs) {
      const auto out = reader.push(ref);
      REQUIRE(out.size() == 1);
      if (reader.ports()[0] == 0) {
        ++tiles;
        CHECK(out[0]->tensor.shape() == std::vector<std::int64_t>{256, 256, 3});
        CHECK_FALSE(is_at(out[0], slide.x, slide.y));
      } else {
        ++skipped;
        CHECK(out[0]->kind == "tile_ref");
        CHECK(is_at(out[0], slide.x, slide.y));
        CHECK_FALSE(out[0]->require<std::string>("read_error").empty());
      }
    }
    CHECK(tiles == n - 1);
    CHECK(skipped == 1);
    CHECK(reader.errors().size() == 0);
    // One warning for the slide, when its last tile had been read: count, fraction, position, reason.
    const auto warnings = reader.errors().warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].item == "corrupt");
    CHECK_THAT(warnings[0].message, Catch::Contains(slide.path.string()) && Catch::Contains("skipped 1 of " + std::to_string(n) + " tiles") &&
                                        Catch::Contains("(" + std::to_string(slide.x) + ", " + std::to_string(slide.y) + ") level 0: "));
    reader.flush();
    CHECK(reader.errors().warnings().size() == 1);  // nothing left over to report again
  }

  SECTION("skip_tile above max_skipped_fraction: the slide is refused, naming file, stage, count and fraction") {
    // 1 of n tiles is more than 0.5 / n of them.
    const double fraction = 0.5 / static_cast<double>(n);
    StageHarness reader("use = \"tile_reader\"\non_tile_error = \"skip_tile\"\nmax_skipped_fraction = " + std::to_string(fraction));
    std::size_t refusals = 0;
    for (const auto& ref : slide.refs) {
      if (!is_at(ref, slide.x, slide.y)) {
        CHECK(reader.push(ref).size() == 1);
        continue;
      }
      ++refusals;
      CHECK_THROWS_WITH(reader.push(ref), Catch::Contains("slide 'corrupt' ('" + slide.path.string() + "')") &&
                                              Catch::Contains("stage 'under_test'") && Catch::Contains("1 of " + std::to_string(n) + " tiles (") &&
                                              Catch::Contains("more than max_skipped_fraction") && Catch::Contains("refused") &&
                                              Catch::Contains("cannot read the tile at (" + std::to_string(slide.x)));
    }
    CHECK(refusals == 1);
    CHECK(reader.errors().warnings().empty());  // a refused slide is an error, not a warning
  }

  SECTION("fail_slide (the default): the corrupt tile is an error, the others are read") {
    StageHarness reader("use = \"tile_reader\"");
    for (const auto& ref : slide.refs) {
      if (is_at(ref, slide.x, slide.y)) {
        CHECK_THROWS_WITH(reader.push(ref), Catch::Contains("slide 'corrupt': cannot read the tile at (" + std::to_string(slide.x) + ", " +
                                                            std::to_string(slide.y) + ") level 0: "));
      } else {
        CHECK(reader.push(ref).size() == 1);
        CHECK(reader.ports()[0] == 0);
      }
    }
    CHECK(reader.errors().warnings().empty());
  }
}

TEST_CASE("on_tile_error: max_skipped_fraction without skip_tile is a validation error", "[slides][skip_tile]") {
  shared_loader();
  CHECK_THROWS_WITH(StageHarness("use = \"tile_reader\"\nmax_skipped_fraction = 0.1"),
                    Catch::Contains("max_skipped_fraction applies only with on_tile_error = \"skip_tile\""));
  CHECK_NOTHROW(StageHarness("use = \"tile_reader\"\non_tile_error = \"skip_tile\"\nmax_skipped_fraction = 0.1"));
}

TEST_CASE("non-square pixels: refused naming the slide file and both values, unless the manifest gives the mpp", "[slides][mpp]") {
  slides::SlideProperties square;
  square.mpp_x = 0.5;
  square.mpp_y = 0.5 * 1.009;  // within the 1% a file's rounding may leave
  square.mpp_source = "openslide.mpp-x";
  CHECK(slides::resolve_mpp("s", "/slides/s.tiff", std::nullopt, square, std::nullopt) == 0.5);

  slides::SlideProperties stretched = square;
  stretched.mpp_y = 0.5 * 1.02;
  CHECK_THROWS_WITH(slides::resolve_mpp("s", "/slides/s.tiff", std::nullopt, stretched, std::nullopt),
                    Catch::Contains("slide 's' ('/slides/s.tiff') has non-square pixels") && Catch::Contains("mpp-x 0.5 ") &&
                        Catch::Contains("mpp-y 0.51 ") && Catch::Contains("openslide.mpp-x") && Catch::Contains("differ by 2%"));
  stretched.mpp_x = 0.51;  // the other way round too
  stretched.mpp_y = 0.5;
  CHECK_THROWS_WITH(slides::resolve_mpp("s", "/slides/s.tiff", std::nullopt, stretched, 0.5), Catch::Contains("non-square pixels"));
  // The manifest's value stands for the file's (whose tags may be wrong): taken as square.
  CHECK(slides::resolve_mpp("s", "/slides/s.tiff", 0.25, stretched, std::nullopt) == 0.25);
}
