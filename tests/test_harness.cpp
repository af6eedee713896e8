// The stage harness, exercised on the core stages: one stage, no graph.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>

#include "histoflow/harness.hpp"
#include "support/graph_helpers.hpp"
#include "support/test_stages.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

PacketPtr uniform_tile(std::uint8_t r, std::uint8_t g, std::uint8_t b, std::int64_t size = 8, std::string id = "t") {
  Packet p;
  p.kind = "tile";
  p.provenance.item_id = std::move(id);
  p.tensor = Tensor::zeros(DType::UInt8, {size, size, 3});
  auto px = p.tensor.span<std::uint8_t>();
  for (std::size_t i = 0; i < px.size(); i += 3) px[i] = r, px[i + 1] = g, px[i + 2] = b;
  return make_packet(std::move(p));
}

}  // namespace

TEST_CASE("harness: an invalid snippet is rejected with every problem listed", "[harness]") {
  shared_loader();
  CHECK_THROWS_WITH(StageHarness("use = \"color_stats\"\nbatch = 0\nspace = \"lab\""),
                    Catch::Contains("out of range") && Catch::Contains("not one of"));
  CHECK_THROWS_WITH(StageHarness("use = \"colour_stats\""), Catch::Contains("did you mean 'color_stats'"));
}

TEST_CASE("harness: color_stats computes per-channel mean and std in RGB and optical density", "[harness][core]") {
  shared_loader();
  StageHarness rgb("use = \"color_stats\"\nspace = \"rgb\"");
  const auto out = rgb.push_batch({uniform_tile(255, 0, 51, 8, "a"), uniform_tile(0, 255, 102, 4, "b")});
  REQUIRE(out.size() == 1);
  const Tensor& f = out[0]->tensor;
  REQUIRE(f.shape() == std::vector<std::int64_t>{2, 6});
  const float* v = f.data<float>();
  CHECK(v[0] == Approx(1.0));
  CHECK(v[1] == Approx(0.0));
  CHECK(v[2] == Approx(0.2));
  CHECK(v[3] == Approx(0.0).margin(1e-6));  // uniform tile: no spread
  CHECK(v[6] == Approx(0.0));
  CHECK(v[7] == Approx(1.0));
  REQUIRE(out[0]->rows.size() == 2);
  CHECK(out[0]->rows[1].item_id == "b");

  StageHarness od("use = \"color_stats\"\nspace = \"od\"");
  const auto dense = od.push_batch({uniform_tile(255, 127, 0)});
  const float* w = dense[0]->tensor.data<float>();
  CHECK(w[0] == Approx(0.0).margin(1e-6));                 // white transmits everything
  CHECK(w[1] == Approx(-std::log10(128.0 / 256.0)));       // half the light: OD ~ 0.30
  CHECK(w[2] == Approx(-std::log10(1.0 / 256.0)));         // no light: the densest value
}

TEST_CASE("harness: color_stats rejects a tile of the wrong shape, naming it", "[harness][core]") {
  shared_loader();
  StageHarness stats("use = \"color_stats\"");
  Packet gray;
  gray.kind = "tile";
  gray.provenance.item_id = "slide-7";
  gray.tensor = Tensor::zeros(DType::UInt8, {8, 8});
  CHECK_THROWS_WITH(stats.push_batch({make_packet(std::move(gray))}), Catch::Contains("slide-7") && Catch::Contains("uint8[8, 8]"));
}

TEST_CASE("harness: tissue_filter keeps stained tiles and drops background", "[harness][core]") {
  shared_loader();
  StageHarness filter("use = \"tissue_filter\"\nmin_tissue = 0.5");
  CHECK(filter.push(uniform_tile(235, 160, 200)).size() == 1);  // pink stroma
  CHECK(filter.push(uniform_tile(245, 245, 245)).empty());      // glass
  CHECK(filter.push(uniform_tile(0, 0, 0)).empty());            // scanner padding
}

TEST_CASE("harness: synthetic_tiles is deterministic by seed and honours count", "[harness][core]") {
  shared_loader();
  StageHarness a("use = \"synthetic_tiles\"\ncount = 5\nsize = 16\nseed = 11");
  StageHarness b("use = \"synthetic_tiles\"\ncount = 5\nsize = 16\nseed = 11");
  StageHarness c("use = \"synthetic_tiles\"\ncount = 5\nsize = 16\nseed = 12");
  const auto ta = a.generate_all(), tb = b.generate_all(), tc = c.generate_all();
  REQUIRE(ta.size() == 5);
  bool any_difference = false;
  for (std::size_t i = 0; i < 5; ++i) {
    const auto pa = ta[i]->tensor.span<std::uint8_t>(), pb = tb[i]->tensor.span<std::uint8_t>(),
               pc = tc[i]->tensor.span<std::uint8_t>();
    CHECK(std::equal(pa.begin(), pa.end(), pb.begin()));
    any_difference |= !std::equal(pa.begin(), pa.end(), pc.begin());
    CHECK(ta[i]->provenance.item_id == "synthetic-" + std::to_string(i));
  }
  CHECK(any_difference);
}

TEST_CASE("harness: synthetic_tiles with a pool replays its first tiles in turn, each in its own buffer", "[harness][core]") {
  shared_loader();
  StageHarness painted("use = \"synthetic_tiles\"\ncount = 7\nsize = 16\nseed = 11");
  StageHarness pooled("use = \"synthetic_tiles\"\ncount = 7\nsize = 16\nseed = 11\npool = 3");
  const auto tp = painted.generate_all(), tq = pooled.generate_all();
  REQUIRE(tq.size() == 7);
  for (std::size_t i = 0; i < 7; ++i) {
    const auto expected = tp[i % 3]->tensor.span<std::uint8_t>(), got = tq[i]->tensor.span<std::uint8_t>();
    CHECK(std::equal(got.begin(), got.end(), expected.begin(), expected.end()));
    CHECK(tq[i]->attributes.at("label") == tp[i % 3]->attributes.at("label"));
    CHECK(tq[i]->provenance.item_id == "synthetic-" + std::to_string(i));
  }
  CHECK(tq[0]->tensor.raw_data() != tq[3]->tensor.raw_data());  // a copy per packet, not the pooled tile itself
}

TEST_CASE("harness: csv_writer writes the file only at flush, sorted", "[harness][core]") {
  shared_loader();
  const auto out = fresh_folder("csv");
  StageHarness writer("use = \"csv_writer\"\nfile = \"f.csv\"", out);
  for (int item : {2, 0, 1}) {
    Packet p;
    p.kind = "features";
    p.tensor = Tensor::zeros(DType::Float32, {1, 2});
    p.tensor.data<float>()[0] = static_cast<float>(item);
    Provenance prov;
    prov.item_id = "s" + std::to_string(item);
    prov.sequence = static_cast<std::uint64_t>(item);
    p.rows = {prov};
    writer.push(make_packet(std::move(p)));
  }
  CHECK_FALSE(std::filesystem::exists(out / "f.csv"));
  writer.flush();
  std::ifstream in(out / "f.csv");
  std::string header, first, second;
  std::getline(in, header);
  std::getline(in, first);
  std::getline(in, second);
  CHECK(header == "item,sequence,x,y,f0,f1");
  CHECK(first == "s0,0,0,0,0,0");
  CHECK(second == "s1,1,0,0,1,0");
}

TEST_CASE("harness: a stage's request to end the input is visible to the test", "[harness][stream]") {
  shared_loader();
  StageHarness ender("use = \"test_ender\"\nstop_after = 2\n");
  Packet item;
  item.kind = "item";
  item.attributes["index"] = std::int64_t{0};
  ender.push(make_packet(item));
  CHECK(ender.sources_ended().empty());
  ender.push(make_packet(item));
  CHECK(ender.sources_ended() == "stage 'under_test' has seen 2 items");
  Observed::instance().reset();  // the ender counted its items as leaving flight
}
