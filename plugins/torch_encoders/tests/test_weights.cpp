// Weights as published: nested PyTorch checkpoints with prefixes, safetensors, and every way they go wrong.
#include <catch2/catch.hpp>
#include <fstream>

#include "histoflow/harness.hpp"
#include "histoflow/sha256.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/safetensors.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "histoflow/torch_encoders/weights.hpp"
#include "support/graph_helpers.hpp"

using namespace histoflow;
using namespace histoflow::torch_encoders;
using histoflow::testing::fresh_folder;

namespace {

const std::filesystem::path kFixtures = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

std::unique_ptr<Backbone> tiny() {
  VitConfig c;
  c.dim = 64, c.depth = 2, c.heads = 2, c.swiglu = true;
  return make_vit(c);
}

bool same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(true), pb = b.named_parameters(true);
  for (const auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

std::string read(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void write(const std::filesystem::path& file, const std::string& bytes) { std::ofstream(file, std::ios::binary) << bytes; }

}  // namespace

TEST_CASE("a DINOv2 training checkpoint loads as published: unwrapped, teacher chosen, head ignored", "[torch][weights]") {
  const auto file = kFixtures / "tiny_swiglu_teacher.pth";
  const LoadedWeights w = read_weights(file);
  CHECK(w.format == "pytorch");
  CHECK(w.nesting == "model");
  CHECK(w.sha256 == sha256_file(file));
  auto loaded = tiny();
  CHECK(load_into(*loaded, w, file) == "teacher.backbone.");
  auto reference = tiny();
  deterministic_init(reference->module());
  CHECK(same_parameters(loaded->module(), reference->module()));
}

TEST_CASE("safetensors written and read back give the same model; the file hash is its identity", "[torch][weights]") {
  auto reference = tiny();
  deterministic_init(reference->module());
  std::map<std::string, SafetensorsBlob> blobs;
  for (const auto& p : reference->module().named_parameters(true)) {
    const auto t = p.value().contiguous();
    blobs[p.key()] = {"F32", t.sizes().vec(), std::string(static_cast<const char*>(t.data_ptr()), t.nbytes())};
  }
  const auto dir = fresh_folder("safetensors");
  write_safetensors(dir / "tiny.safetensors", blobs, {{"format", "pt"}});
  const LoadedWeights w = read_weights(dir / "tiny.safetensors");
  CHECK(w.format == "safetensors");
  auto loaded = tiny();
  CHECK(load_into(*loaded, w, dir / "tiny.safetensors").empty());
  CHECK(same_parameters(loaded->module(), reference->module()));
}

TEST_CASE("a safetensors file whose header length ends in the byte 0x80 is not taken for a legacy pickle", "[torch][weights]") {
  // 1 in 256 headers: a finetuning checkpoint of 112,992 header bytes (0x1b980) was refused on resume.
  const auto dir = fresh_folder("safetensors-0x80");
  const std::map<std::string, SafetensorsBlob> blobs{{"w", {"F32", {2}, std::string(8, '\0')}}};
  bool tried = false;
  for (std::size_t pad = 0; pad < 256 && !tried; ++pad) {
    write_safetensors(dir / "w.safetensors", blobs, {{"note", std::string(pad, 'x')}});
    const std::string bytes = read(dir / "w.safetensors");
    if (static_cast<unsigned char>(bytes[0]) != 0x80) continue;
    tried = true;
    const LoadedWeights w = read_weights(dir / "w.safetensors");
    CHECK(w.format == "safetensors");
    CHECK(w.tensors.count("w") == 1);
  }
  REQUIRE(tried);
  // A real legacy pickle still gets its own message.
  write(dir / "legacy.pth", std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14));
  CHECK_THROWS_WITH(read_weights(dir / "legacy.pth"), Catch::Contains("legacy (pre-1.6) PyTorch checkpoint"));
}

TEST_CASE("broken weight files fail clearly, naming the file", "[torch][weights][bad]") {
  const auto dir = fresh_folder("bad-weights");
  const std::string good = read(kFixtures / "dinov2_tiny_swiglu.safetensors");
  // Truncated: the header's ranges point past the end.
  write(dir / "truncated.safetensors", good.substr(0, good.size() / 2));
  CHECK_THROWS_WITH(read_weights(dir / "truncated.safetensors"),
                    Catch::Contains("truncated.safetensors") && Catch::Contains("outside"));
  // A header that claims more bytes than the file has.
  std::string lying = good;
  lying[6] = '\x7f';
  write(dir / "lying.safetensors", lying);
  CHECK_THROWS_WITH(read_weights(dir / "lying.safetensors"), Catch::Contains("lying.safetensors") && Catch::Contains("the header claims"));
  // A shape that disagrees with the byte range.
  write_safetensors(dir / "shape.safetensors", {{"w", {"F32", {3, 3}, std::string(32, '\0')}}}, {});
  CHECK_THROWS_WITH(read_weights(dir / "shape.safetensors"), Catch::Contains("tensor 'w'") && Catch::Contains("needs 36"));
  // A corrupt PyTorch checkpoint.
  const std::string pth = read(kFixtures / "tiny_swiglu_teacher.pth");
  write(dir / "corrupt.pth", pth.substr(0, pth.size() / 3));
  CHECK_THROWS_WITH(read_weights(dir / "corrupt.pth"), Catch::Contains("corrupt.pth"));
  // Not a weights file at all.
  write(dir / "notes.pth", "these are not weights");
  CHECK_THROWS_WITH(read_weights(dir / "notes.pth"), Catch::Contains("notes.pth"));
}

TEST_CASE("weights for another architecture list every missing and unexpected key at once", "[torch][weights][bad]") {
  const auto file = kFixtures / "tiny_swiglu_teacher.pth";
  const LoadedWeights w = read_weights(file);
  auto resnet = find_backbone("resnet50").create();
  try {
    load_into(*resnet, w, file);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    const std::string text = e.what();
    CHECK_THAT(text, Catch::Contains("tiny_swiglu_teacher.pth") && Catch::Contains("missing:") && Catch::Contains("conv1.weight"));
  }
  // Same family, another size: every tensor has the wrong shape.
  auto vits = find_backbone("dinov2_vits14").create();
  CHECK_THROWS_WITH(load_into(*vits, w, file), Catch::Contains("with another shape") && Catch::Contains("cls_token") &&
                                                   Catch::Contains("missing") && Catch::Contains("blocks.11"));
}

TEST_CASE("encoder stage errors: unknown backbone, CUDA without a device, wrong tiles", "[torch][stage][bad]") {
  testing::shared_loader();
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"dinov2_vits15\"\nsynthetic_weights = true"),
                    Catch::Contains("did you mean 'dinov2_vits14'"));
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"resnet50\""), Catch::Contains("needs 'weights' or 'synthetic_weights = true'"));
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"resnet50\"\nsynthetic_weights = true\noutput = \"cls\""),
                    Catch::Contains("output 'cls' is not offered by backbone 'resnet50' (resnet)"));
  if (!torch::cuda::is_available())
    CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"resnet50\"\nsynthetic_weights = true\ndevice = \"cuda:0\""),
                      Catch::Contains("no CUDA device"));
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"resnet50_trunc\"\nsynthetic_weights = true\nthreads = 2");
  Packet gray;
  gray.kind = "tile";
  gray.provenance.item_id = "slide-3";
  gray.tensor = histoflow::Tensor::zeros(DType::Float32, {224, 224, 3});
  CHECK_THROWS_WITH(encoder.push_batch({make_packet(std::move(gray))}), Catch::Contains("slide-3") && Catch::Contains("expected uint8"));
}

#include "histoflow/torch_encoders/convert.hpp"

TEST_CASE("the converter writes safetensors that load to the same tensors", "[torch][weights][convert]") {
  const auto dir = fresh_folder("convert");
  const auto source = kFixtures / "tiny_swiglu_teacher.pth";
  const auto report = convert_to_safetensors(source, dir / "out.safetensors");
  CHECK(report.nesting == "model");
  CHECK(report.source_sha256 == sha256_file(source));
  const LoadedWeights original = read_weights(source), converted = read_weights(dir / "out.safetensors");
  REQUIRE(converted.tensors.size() == original.tensors.size());
  for (const auto& [name, tensor] : original.tensors) CHECK(torch::equal(converted.tensors.at(name), tensor));
  // Reduced to a backbone, the converter checks strictly: these weights are not a ViT-S.
  CHECK_THROWS_WITH(convert_to_safetensors(source, dir / "vits.safetensors", "dinov2_vits14"), Catch::Contains("do not fit"));
  CHECK_FALSE(std::filesystem::exists(dir / "vits.safetensors"));
}

TEST_CASE("a TorchScript model runs through the encoder with declared size, normalisation and width", "[torch][torchscript]") {
  histoflow::testing::shared_loader();
  const auto f = read_weights(kFixtures / "torchscript_small.safetensors").tensors;
  const auto model = (kFixtures / "torchscript_small.pt").string();
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"torchscript\"\nweights = \"" + model +
                       "\"\ninput_size = 64\nmean = [0.5, 0.5, 0.5]\nstd = [0.25, 0.25, 0.25]\noutput_size = 5\nthreads = 2");
  std::vector<PacketPtr> tiles;
  const auto input = f.at("input").contiguous();
  for (std::int64_t i = 0; i < 2; ++i) {
    Packet tile;
    tile.kind = "tile";
    tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {64, 64, 3});
    std::memcpy(tile.tensor.raw_data(), input[i].data_ptr(), tile.tensor.nbytes());
    tiles.push_back(make_packet(std::move(tile)));
  }
  const auto out = encoder.push_batch(tiles);
  const auto ours = torch::from_blob(out[0]->tensor.raw_data(), {2, 5}, torch::kFloat32);
  const auto reference = f.at("features");
  CHECK(((ours - reference).norm() / reference.norm()).item<double>() < 1e-5);
  CHECK(*out[0]->attribute<std::string>("weights_sha256") == sha256_file(model));
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"torchscript\"\nsynthetic_weights = true"),
                    Catch::Contains("needs weights"));
  StageHarness wrong("use = \"torch_encoder\"\nbackbone = \"torchscript\"\nweights = \"" + model + "\"\ninput_size = 64\noutput_size = 7");
  CHECK_THROWS_AS(wrong.push_batch(tiles), FatalError);
}

TEST_CASE("a backbone added by a plugin is accepted, validated and described like a built-in one", "[torch][plugin]") {
  histoflow::testing::shared_loader();  // loads build/plugins, example_backbone among them
  REQUIRE(find_backbone("example_small_cnn").dim == 32);
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"example_small_cnn\"\nsynthetic_weights = true\nthreads = 2");
  Packet tile;
  tile.kind = "tile";
  tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {224, 224, 3});
  const auto out = encoder.push_batch({make_packet(std::move(tile))});
  CHECK(out[0]->tensor.shape() == std::vector<std::int64_t>{1, 32});
  // Validation reads the registry after the plugins registered: typos are caught before any work.
  CHECK_THROWS_WITH(StageHarness("use = \"torch_encoder\"\nbackbone = \"example_small_cn\"\nsynthetic_weights = true"),
                    Catch::Contains("did you mean 'example_small_cnn'"));
  CHECK_THROWS_WITH(register_backbone(find_backbone("resnet50")), Catch::Contains("registered twice"));
}
