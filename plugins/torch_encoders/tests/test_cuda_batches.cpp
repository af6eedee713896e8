// The encoder's mixed-precision and CUDA paths. Everywhere: autocast through AutocastScope (the path the encoder
// takes on CUDA: bf16 products on fp32 weights), exercised here with LibTorch's CPU autocast, and the cutting of a
// batch into micro-batches. Hidden ([.cuda], not run by default: they need a GPU; tools/gpu/check runs them):
// the stage on CUDA against the CPU, the streams and their reused pinned buffers, autocast precision on the GPU.
#include <catch2/catch.hpp>

#include <cstring>
#include <tuple>

#include "cuda_batches.hpp"
#include "encoder_fixtures.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/torch_encoders/autocast.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "model_cache.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::torch_encoders;
using namespace histoflow::torch_encoders::fixtures;

namespace {

using Ranges = std::vector<std::pair<std::int64_t, std::int64_t>>;

// Seeded random uint8 [H, W, 3] tiles with item ids tile-0, tile-1, ...
std::vector<PacketPtr> random_tiles(std::int64_t count, std::int64_t size, std::uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<PacketPtr> tiles;
  for (std::int64_t i = 0; i < count; ++i) {
    Packet tile;
    tile.kind = "tile";
    tile.provenance.item_id = "tile-" + std::to_string(i);
    tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {size, size, 3});
    const auto pixels = torch::randint(0, 256, {size, size, 3}, torch::kUInt8);
    std::memcpy(tile.tensor.raw_data(), pixels.data_ptr(), tile.tensor.nbytes());
    tiles.push_back(make_packet(std::move(tile)));
  }
  return tiles;
}

torch::Tensor features_of(const PacketPtr& packet) {
  const histoflow::Tensor& t = packet->tensor;
  return torch::from_blob(t.raw_data(), {t.shape()[0], t.shape()[1]}, torch::kFloat32).clone();
}

std::string encoder_snippet(const std::string& device, const std::string& precision, int streams = 2) {
  return "use = \"torch_encoder\"\nbackbone = \"dinov2_vits14\"\nsynthetic_weights = true\nthreads = 2\noutput = \"cls+mean_patch\"\n"
         "device = \"" + device + "\"\nprecision = \"" + precision + "\"\nstreams = " + std::to_string(streams);
}

torch::Device cuda_device() { return test_device().is_cuda() ? test_device() : parse_device("cuda"); }

}  // namespace

TEST_CASE("a batch is cut into near-equal consecutive micro-batches, none too small to be worth a stream", "[torch][cuda_batches]") {
  CHECK(micro_batches(256, 2, 8) == Ranges{{0, 128}, {128, 256}});
  CHECK(micro_batches(10, 3, 1) == Ranges{{0, 4}, {4, 7}, {7, 10}});
  CHECK(micro_batches(37, 3, 8) == Ranges{{0, 13}, {13, 25}, {25, 37}});
  CHECK(micro_batches(20, 4, 8) == Ranges{{0, 10}, {10, 20}});  // 4 parts would be smaller than 8
  CHECK(micro_batches(5, 4, 8) == Ranges{{0, 5}});
  CHECK(micro_batches(7, 1, 8) == Ranges{{0, 7}});
  CHECK(micro_batches(0, 2, 8).empty());
}

TEST_CASE("autocast runs a model's products in bf16 on its fp32 weights, and the previous state comes back", "[torch][autocast]") {
  torch::manual_seed(3);
  const auto images = torch::randn({2, 3, 224, 224});
  for (const std::string name : {"dinov2_vits14", "resnet50_trunc"}) {
    const BackboneSpec& spec = find_backbone(name);
    auto net = spec.create();
    deterministic_init(net->module());
    prepare_for_inference(*net, spec, torch::kCPU, torch::kFloat32);
    torch::InferenceMode inference;
    const auto x = images.contiguous(spec.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous);
    const auto pick = [](const BackboneOutput& y) { return y.pooled.defined() ? y.pooled : y.cls; };
    const torch::Tensor reference = pick(net->forward(x));
    torch::Tensor mixed;
    CHECK_FALSE(autocast_enabled(c10::DeviceType::CPU));
    {
      AutocastScope scope(c10::DeviceType::CPU, torch::kBFloat16);
      CHECK(autocast_enabled(c10::DeviceType::CPU));
      mixed = pick(net->forward(x));
    }
    CHECK_FALSE(autocast_enabled(c10::DeviceType::CPU));
    // The weights are still fp32, the result differs from fp32 (the products ran in bf16) by bf16's rounding only.
    CHECK(net->module().parameters().front().scalar_type() == torch::kFloat32);
    const double error = relative_error(mixed, reference);
    INFO(name << ": relative L2 error of bf16 autocast against fp32 " << error);
    CHECK(error > 1e-5);
    CHECK(error < 3e-2);
  }
  CHECK_THROWS_WITH(AutocastScope(c10::DeviceType::CPU, torch::kHalf), Catch::Contains("bf16 on the CPU"));
}

TEST_CASE("CudaBatches returns each tile's features in order and reuses its pinned buffers", "[.cuda][torch][cuda_batches]") {
  CudaBatches batches(cuda_device(), 3);
  // Per-tile channel means: exact to check, and each row tells which tile it came from.
  const auto mean_colour = [](const torch::Tensor& tiles) { return tiles.to(torch::kFloat32).mean(std::vector<std::int64_t>{1, 2}); };
  const auto run = [&](std::int64_t count, std::int64_t size, std::uint64_t seed) {
    const auto packets = random_tiles(count, size, seed);
    std::vector<const std::uint8_t*> tiles;
    for (const auto& p : packets) tiles.push_back(static_cast<const std::uint8_t*>(p->tensor.raw_data()));
    const torch::Tensor features = batches.encode(tiles, size, size, mean_colour);
    REQUIRE(features.sizes() == torch::IntArrayRef{count, 3});
    CHECK(features.device().is_cpu());
    for (std::int64_t i = 0; i < count; ++i) {
      const auto& t = packets[static_cast<std::size_t>(i)]->tensor;
      const auto expected = torch::from_blob(t.raw_data(), {size, size, 3}, torch::kUInt8).to(torch::kFloat32).mean(std::vector<std::int64_t>{0, 1});
      CHECK(torch::allclose(features[i], expected, 1e-5, 1e-4));
    }
  };
  run(37, 64, 1);  // three micro-batches of 13, 12 and 12
  const std::int64_t allocated = batches.pinned_allocations();
  CHECK(allocated == 6);  // tiles in and features out, per stream
  for (std::uint64_t seed = 2; seed < 6; ++seed) run(37, 64, seed);
  run(5, 64, 6);  // one micro-batch, smaller than the buffers
  CHECK(batches.pinned_allocations() == allocated);
  run(24, 96, 7);  // larger tiles: the tile buffers grow, once
  CHECK(batches.pinned_allocations() == allocated + 3);

  // A failing forward pass leaves the streams usable.
  std::vector<const std::uint8_t*> none;
  const auto packets = random_tiles(16, 64, 8);
  for (const auto& p : packets) none.push_back(static_cast<const std::uint8_t*>(p->tensor.raw_data()));
  CHECK_THROWS_WITH(batches.encode(none, 64, 64, [](const torch::Tensor&) -> torch::Tensor { throw std::runtime_error("no model"); }),
                    Catch::Contains("no model"));
  run(37, 64, 9);
}

TEST_CASE("the encoder on CUDA gives the CPU's fp32 features, rows in order, for batches of any size", "[.cuda][torch][stage]") {
  testing::shared_loader();
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  StageHarness cpu(encoder_snippet("cpu", "fp32"));
  StageHarness gpu(encoder_snippet(cuda_device().str(), "fp32", 3));
  std::uint64_t seed = 10;
  for (const std::int64_t count : {1, 8, 37, 64}) {
    const auto tiles = random_tiles(count, 224, seed++);
    const auto expected = cpu.push_batch(tiles), got = gpu.push_batch(tiles);
    REQUIRE(got.size() == 1);
    REQUIRE(got[0]->rows.size() == static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) CHECK(got[0]->rows[static_cast<std::size_t>(i)].item_id == "tile-" + std::to_string(i));
    const double error = relative_error(features_of(got[0]), features_of(expected[0]));
    INFO(count << " tiles: relative L2 error of CUDA fp32 against the CPU " << error);
    CHECK(error < 1e-4);
  }
}

TEST_CASE("bf16 and fp16 on CUDA run under autocast on one shared fp32 model, close to fp32", "[.cuda][torch][autocast]") {
  testing::shared_loader();
  const std::string device = cuda_device().str();
  const std::size_t before = models_loaded();
  StageHarness fp32(encoder_snippet(device, "fp32"));
  StageHarness bf16(encoder_snippet(device, "bf16"));
  StageHarness fp16(encoder_snippet(device, "fp16"));
  CHECK(models_loaded() == before + 1);  // the weights stay fp32 for every precision: one model
  const auto tiles = random_tiles(32, 224, 20);
  const auto reference = features_of(fp32.push_batch(tiles)[0]);
  for (const auto& [harness, name, tolerance] : {std::tuple{&bf16, "bf16", 3e-2}, std::tuple{&fp16, "fp16", 5e-3}}) {
    const auto out = harness->push_batch(tiles);
    REQUIRE(out.size() == 1);
    CHECK(*out[0]->attribute<std::string>("precision") == name);
    const auto features = features_of(out[0]);
    CHECK(torch::isfinite(features).all().item<bool>());
    const double error = relative_error(features, reference);
    INFO(name << ": relative L2 error against fp32 on the GPU " << error);
    CHECK(error > 1e-6);  // the products really ran in reduced precision
    CHECK(error < tolerance);
  }
}
