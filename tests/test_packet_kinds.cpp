// Packet kinds: declarations, what a packet is checked against, ports that name undeclared kinds, and the
// emission check that the runtime and the harness run when packet checks are on.
#include <catch2/catch.hpp>

#include "histoflow/harness.hpp"
#include "histoflow/kind.hpp"
#include "histoflow/registry.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::testing;

namespace {

Packet tile_packet(DType dtype, std::vector<std::int64_t> shape) {
  Packet p;
  p.kind = kinds::kTile;
  p.tensor = Tensor::zeros(dtype, std::move(shape));
  return p;
}

class NoWork final : public Stage {
 public:
  explicit NoWork(const StageContext&) {}
};

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

}  // namespace

TEST_CASE("a packet is checked against its kind: tensor dtype, rank, shape, rows and attribute types", "[kinds]") {
  const PacketKind& tile = *Registry::instance().find_kind(kinds::kTile);
  CHECK(packet_kind_problems(tile, tile_packet(DType::UInt8, {4, 6, 3})).empty());

  CHECK(joined(packet_kind_problems(tile, tile_packet(DType::Float32, {4, 6, 3}))) ==
        "tensor has dtype float32, the kind allows uint8\n");
  CHECK(joined(packet_kind_problems(tile, tile_packet(DType::UInt8, {4, 6}))) ==
        "tensor has rank 2 ([4, 6]), the kind needs rank 3\n");
  CHECK(joined(packet_kind_problems(tile, tile_packet(DType::UInt8, {4, 6, 4}))) ==
        "tensor has shape [4, 6, 4], the kind needs [*, *, 3]\n");
  Packet labelled = tile_packet(DType::UInt8, {2, 2, 3});
  labelled.attributes["label"] = std::string("tumour");
  labelled.attributes["undeclared"] = 1.5;  // allowed: a stage may pass more on
  CHECK(joined(packet_kind_problems(tile, labelled)) == "attribute 'label' is of type string, the kind declares integer\n");

  const PacketKind& features = *Registry::instance().find_kind(kinds::kFeatures);
  Packet rows;
  rows.kind = kinds::kFeatures;
  rows.tensor = Tensor::zeros(DType::Float32, {3, 8});
  rows.rows.resize(2);
  CHECK(joined(packet_kind_problems(features, rows)) ==
        "tensor has 3 rows but the packet names 2 row provenances\n"
        "lacks the required attribute 'encoder' (string: name of the encoder (backbone) that computed the rows)\n");
}

TEST_CASE("an attribute family covers every member and checks its type", "[kinds]") {
  PacketKind kind;
  kind.name = "test_family";
  kind.attributes = {optional_attribute("mean:", AttributeType::Float, "a metric")};
  Packet p;
  p.kind = kind.name;
  p.attributes["mean:auroc"] = 0.9;
  CHECK(packet_kind_problems(kind, p).empty());
  p.attributes["mean:f1"] = std::string("high");
  CHECK(joined(packet_kind_problems(kind, p)) == "attribute 'mean:f1' is of type string, the kind declares float\n");
  CHECK(kind.find_attribute("mean:") == nullptr);  // the family's name alone is not a member
}

TEST_CASE("a kind is declared once; a declaration that contradicts itself is refused", "[kinds]") {
  PacketKind twice;
  twice.name = kinds::kTile;
  CHECK_THROWS_WITH(Registry::instance().add_kind(twice),
                    "packet kind 'tile' is declared twice: by framework and by framework");
  PacketKind odd;
  odd.name = "test_odd_kind";
  odd.tensor = TensorSpec{{DType::Float32}, 2, {-1, -1, 3}, false, ""};
  CHECK_THROWS_WITH(Registry::instance().add_kind(odd), Catch::Contains("declares rank 2 but a shape of 3 dimensions"));
}

TEST_CASE("a port naming a kind that no plugin declares is refused at validation", "[kinds][validation]") {
  shared_loader();
  static std::once_flag once;
  std::call_once(once, [] {
    StageContract c;
    c.type = "test_undeclared_kind_sink";
    c.summary = "a sink whose port names a kind nobody declares";
    c.inputs = {{"items", "itme", ""}};
    register_stage<NoWork>(Registry::instance(), c);
  });
  const auto diagnostics = diagnostics_of(graph_text(R"(
[stage.src]
use = "test_source"
[stage.sink]
use = "test_undeclared_kind_sink"
input = "src"
)", fresh_folder("undeclared-kind")));
  REQUIRE(diagnostics.size() >= 1);
  CHECK_THAT(diagnostics[0].message,
             Catch::StartsWith("stage type 'test_undeclared_kind_sink' has port 'items' of packet kind 'itme', which "
                               "no loaded plugin declares (did you mean 'item'?)"));
}

TEST_CASE("with packet checks on, a stage that emits a packet breaking its kind fails naming the port and the kind", "[kinds][harness]") {
  REQUIRE(packet_checks_enabled());  // tools/test and this binary's ctest entries set HISTOFLOW_CHECK_PACKETS=1
  shared_loader();
  StageHarness expand("use = \"test_expand\"\ncopies = 1");
  Packet item;
  item.kind = "item";
  item.attributes["index"] = std::string("seven");
  CHECK_THROWS_WITH(expand.push(make_packet(item)),
                    "stage emitted a packet on output 'items' that breaks its kind 'item' (`flowrun describe item`): "
                    "attribute 'index' is of type string, the kind declares integer");
  item.attributes["index"] = std::int64_t{7};
  CHECK(expand.push(make_packet(item)).size() == 1);
}
