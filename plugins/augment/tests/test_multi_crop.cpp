// The multi_crop stage: its crops depend on the seed and the tile's stream position only (equal at 1 and 2
// threads, equal to the library's multi_crop), the recipe's probabilities hold over many crops, bad tiles and
// parameters give clear errors.
#include <catch2/catch.hpp>

#include <map>
#include <mutex>

#include "histoflow/augment/dino_augmentation.hpp"
#include "histoflow/augment/crops_kind.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/registry.hpp"
#include "histoflow/stage.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::augment;
using histoflow::testing::fresh_folder;

namespace {

// Collects every ssl_crops packet's bytes by stream position.
struct CollectedCrops {
  std::mutex mutex;
  std::map<std::uint64_t, std::vector<std::uint8_t>> by_sequence;
  static CollectedCrops& instance() {
    static CollectedCrops c;
    return c;
  }
};

class CropsCollector final : public Stage {
 public:
  explicit CropsCollector(const StageContext&) {}
  void process(const PacketPtr& input, std::size_t, Emitter&) override {
    crops_layout_of(*input);  // the layout its attributes declare fits its tensor
    const auto bytes = input->tensor.span<std::uint8_t>();
    auto& c = CollectedCrops::instance();
    std::lock_guard lock(c.mutex);
    c.by_sequence[input->provenance.sequence].assign(bytes.begin(), bytes.end());
  }
};

void register_collector() {
  static std::once_flag once;
  std::call_once(once, [] {
    StageContract c;
    c.type = "test_crops_collector";
    c.summary = "test sink keeping ssl_crops bytes";
    c.inputs = {{"crops", kCropsKind, ""}};
    c.concurrency = Concurrency::Unlimited;
    register_stage<CropsCollector>(Registry::instance(), c);
  });
}

std::map<std::uint64_t, std::vector<std::uint8_t>> crops_of_run(std::int64_t threads, const std::string& extra = "") {
  histoflow::testing::shared_loader();
  register_collector();
  CollectedCrops::instance().by_sequence.clear();
  const auto folder = fresh_folder("multi-crop");
  const std::string stages =
      "[stage.tiles]\nuse = \"synthetic_tiles\"\ncount = 24\nsize = 96\nseed = 5\n"
      "[stage.crops]\nuse = \"multi_crop\"\ninput = \"tiles\"\nglobal_size = 56\nlocal_size = 28\nlocal_number = 3\n" + extra +
      "[stage.keep]\nuse = \"test_crops_collector\"\ninput = \"crops\"\n";
  const GraphSpec spec = histoflow::testing::load_valid(histoflow::testing::graph_text(stages, folder));
  RunOptions options;
  options.threads = threads;
  const RunResult result = histoflow::testing::run_quietly(spec, options);
  REQUIRE(result.status == RunStatus::Completed);
  return CollectedCrops::instance().by_sequence;
}

PacketPtr tile_packet(int height, int width, std::uint64_t sequence) {
  Packet p;
  p.kind = kinds::kTile;
  p.provenance.item_id = "tile";
  p.provenance.sequence = sequence;
  p.tensor = Tensor::zeros(DType::UInt8, {height, width, 3});
  auto pixels = p.tensor.span<std::uint8_t>();
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>((i * 37 + i / 7) % 251);
  return make_packet(std::move(p));
}

}  // namespace

TEST_CASE("multi_crop gives the same crops at 1 and 2 threads, and the library's crops", "[augment][stage]") {
  const auto one = crops_of_run(1);
  const auto two = crops_of_run(2);
  REQUIRE(one.size() == 24);
  REQUIRE(one == two);
  // Another seed changes every sample; a sample differs from its neighbour.
  const auto reseeded = crops_of_run(2, "seed = 8\n");
  for (const auto& [sequence, bytes] : one) CHECK(reseeded.at(sequence) != bytes);
  CHECK(one.at(0) != one.at(1));
  // The stage is the library function of (experiment seed 3, stream position) on the tile.
  MultiCropRecipe recipe;
  recipe.layout = {2, 56, 3, 28};
  StageHarness source("use = \"synthetic_tiles\"\ncount = 24\nsize = 96\nseed = 5\n");
  const auto tiles = source.generate_all();
  const Packet& tile = *tiles.at(7);
  RgbImage image;
  image.height = image.width = 96;
  const auto pixels = tile.tensor.span<std::uint8_t>();
  image.pixels.assign(pixels.begin(), pixels.end());
  std::vector<std::uint8_t> expected(recipe.layout.total_bytes());
  multi_crop(image, recipe, 3, tile.provenance.sequence, expected.data());
  CHECK(one.at(tile.provenance.sequence) == expected);
}

TEST_CASE("multi_crop draws follow the recipe's probabilities and ranges", "[augment]") {
  MultiCropRecipe recipe;
  const int samples = 4000;
  int jitter = 0, grey = 0, hflip = 0, vflip = 0, blur[3] = {0, 0, 0}, solar = 0;
  double global_area = 0, local_area = 0;
  for (int s = 0; s < samples; ++s)
    for (int crop = 0; crop < 3; ++crop) {  // global 1, global 2, a local crop
      const CropDraw d = draw_crop(recipe, 224, 224, crop == 2 ? 5 : crop, 11, static_cast<std::uint64_t>(s));
      jitter += d.jitter;
      grey += d.grayscale;
      hflip += d.flip_horizontal;
      vflip += d.flip_vertical;
      blur[crop] += d.blur_sigma.has_value();
      solar += d.solarize;
      const double area = double(d.box.height) * d.box.width / (224.0 * 224.0);
      (crop == 2 ? local_area : global_area) += area;
      if (d.blur_sigma) REQUIRE((*d.blur_sigma >= 0.1 && *d.blur_sigma <= 2.0));
      if (d.jitter) {
        REQUIRE((d.factors[0] >= 0.6 && d.factors[0] <= 1.4 && d.factors[2] >= 0.8 && d.factors[2] <= 1.2));
        REQUIRE(std::abs(d.factors[3]) <= 0.1);
      }
      REQUIRE((crop == 1 || !d.solarize));
    }
  // Binomial proportions, 12000 or 4000 draws: 5 standard deviations or less off.
  const auto near = [](int count, int n, double p) { return std::abs(count - n * p) <= 5 * std::sqrt(n * p * (1 - p)) + 1e-9; };
  CHECK(near(jitter, 3 * samples, 0.8));
  CHECK(near(grey, 3 * samples, 0.2));
  CHECK(near(hflip, 3 * samples, 0.5));
  CHECK(near(vflip, 3 * samples, 0.5));
  CHECK(blur[0] == 0);  // the official code never blurs global crop 1 (see blur_probability)
  CHECK(near(blur[1], samples, 0.9));
  CHECK(near(blur[2], samples, 0.5));
  CHECK(near(solar, samples, 0.2));
  // Global crops: area uniform in [0.32, 1] and log-ratio uniform, kept only when the box fits the square tile
  // (area * ratio <= 1 and area / ratio <= 1), so the mean kept area is below 0.66: integrate it on a grid.
  double kept = 0, kept_area = 0;
  for (int i = 0; i < 1000; ++i)
    for (int j = 0; j < 1000; ++j) {
      const double area = 0.32 + 0.68 * (i + 0.5) / 1000, ratio = std::exp(std::log(0.75) + std::log(16.0 / 9.0) * (j + 0.5) / 1000);
      if (area * ratio <= 1 && area / ratio <= 1) kept += 1, kept_area += area;
    }
  CHECK(global_area / (2 * samples) == Approx(kept_area / kept).margin(0.01));
  CHECK(local_area / samples == Approx(0.185).margin(0.01));        // uniform in [0.05, 0.32]
}

TEST_CASE("multi_crop refuses what it cannot crop, naming it", "[augment][stage]") {
  histoflow::testing::shared_loader();  // the plugins, when this case runs alone
  StageHarness harness("use = \"multi_crop\"\nglobal_size = 32\nlocal_size = 16\nlocal_number = 2\n");
  const auto out = harness.push(tile_packet(40, 50, 9));
  REQUIRE(out.size() == 1);
  const CropsLayout layout = crops_layout_of(*out[0]);
  CHECK(layout.total_bytes() == 2 * 32 * 32 * 3 + 2 * 16 * 16 * 3);
  CHECK(out[0]->provenance.sequence == 9);

  Packet flat;
  flat.kind = kinds::kTile;
  flat.tensor = Tensor::zeros(DType::UInt8, {40, 50});
  REQUIRE_THROWS_WITH(harness.push(make_packet(flat)), Catch::Contains("expected an RGB uint8 tile"));
  REQUIRE_THROWS_WITH(StageHarness("use = \"multi_crop\"\nglobal_scale = [0.5]\n"), Catch::Contains("global_scale must be [low, high]"));
  REQUIRE_THROWS_WITH(StageHarness("use = \"multi_crop\"\nblur_probability = [0.5, 0.5]\n"), Catch::Contains("blur_probability must list 3"));
}
