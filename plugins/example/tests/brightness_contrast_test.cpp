// Tests brightness_contrast alone with the stage harness: no graph, no threads.
// Build and run (see docs/write-a-plugin.md):
//   g++ -std=c++20 -O1 -I framework/include -I build/framework/generated \
//       -DHISTOFLOW_PLUGIN_BUILD_DIR='"build/plugins"' plugins/example/tests/brightness_contrast_test.cpp \
//       -L build/lib -lhistoflow -Wl,-rpath,$PWD/build/lib -o /tmp/example_test && /tmp/example_test
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include "histoflow/harness.hpp"
#include "histoflow/kind.hpp"
#include "histoflow/registry.hpp"

using namespace histoflow;

namespace {

// The harness builds stages from the registry: load this plugin's file (once per process; nothing else).
void load_example_plugin() {
  StageHarness::load_plugin(HISTOFLOW_PLUGIN_BUILD_DIR "/libhf_example.so");
  REQUIRE(Registry::instance().find("brightness_contrast"));
}

PacketPtr tile_of(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  Packet p;
  p.kind = kinds::kTile;
  p.provenance.item_id = "slide-1";
  p.attributes["label"] = std::int64_t{2};
  p.tensor = Tensor::zeros(DType::UInt8, {2, 2, 3});
  auto px = p.tensor.span<std::uint8_t>();
  for (std::size_t i = 0; i < px.size(); i += 3) px[i] = r, px[i + 1] = g, px[i + 2] = b;
  return make_packet(std::move(p));
}

}  // namespace

TEST_CASE("brightness_contrast adjusts every channel and keeps provenance") {
  load_example_plugin();
  StageHarness h("use = \"brightness_contrast\"\ncontrast = 2.0\nbrightness = 0.1");
  const auto out = h.push(tile_of(100, 128, 250));
  REQUIRE(out.size() == 1);
  const auto px = out[0]->tensor.span<std::uint8_t>();
  CHECK(px[0] == 98);   // (100 - 128) * 2 + 128 + 25.5 = 97.5, rounded half away from zero
  CHECK(px[1] == 154);  // 128 + 25.5
  CHECK(px[2] == 255);  // clamped
  CHECK(out[0]->provenance.item_id == "slide-1");
  CHECK(*out[0]->attribute<std::int64_t>("label") == 2);
}

TEST_CASE("brightness_contrast grayscale replicates luma on three channels") {
  load_example_plugin();
  StageHarness h("use = \"brightness_contrast\"\ngrayscale = true");
  const auto out = h.push(tile_of(200, 100, 50));  // keep the packets alive while reading their pixels
  const auto px = out.at(0)->tensor.span<std::uint8_t>();
  CHECK(px[0] == 124);  // 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2
  CHECK(px[1] == 124);
  CHECK(px[2] == 124);
}

TEST_CASE("brightness_contrast rejects out-of-range parameters and non-tiles") {
  load_example_plugin();
  CHECK_THROWS_WITH(StageHarness("use = \"brightness_contrast\"\ncontrast = 9.0"),
                    Catch::Contains("parameter 'contrast' = 9.0 is out of range [0, 4]"));
  StageHarness h("use = \"brightness_contrast\"");
  Packet features;
  features.kind = "tile";
  features.tensor = Tensor::zeros(DType::Float32, {4, 6});
  CHECK_THROWS_WITH(h.push(make_packet(std::move(features))), Catch::Contains("expected an RGB uint8 tile"));
}
