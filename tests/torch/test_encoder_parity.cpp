// Parity with the reference implementations: torchvision's ResNet-50 and the official DINOv2 code, on
// deterministic weights (histoflow-init-v1, generated identically on both sides) and a deterministic input.
// Fixtures come from tools/parity/make_encoder_fixtures.py; the tests need no Python.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "backbone.hpp"
#include "histoflow/harness.hpp"
#include "safetensors.hpp"
#include "support/graph_helpers.hpp"
#include "vit.hpp"
#include "weights.hpp"

using namespace histoflow;
using namespace histoflow::torchenc;

namespace {

const std::filesystem::path kFixtures = std::filesystem::path(HISTOFLOW_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

// A fixture file's tensors, read with histoflow's own safetensors reader.
std::map<std::string, torch::Tensor> fixture(const std::string& name) {
  return read_weights(kFixtures / (name + ".safetensors")).tensors;
}

double relative_error(const torch::Tensor& ours, const torch::Tensor& reference) {
  return ((ours.to(torch::kFloat64) - reference.to(torch::kFloat64)).norm() / reference.to(torch::kFloat64).norm()).item<double>();
}

torch::Tensor preprocess(const torch::Tensor& uint8_nhwc) {
  auto x = uint8_nhwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div(255.0);
  const auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  return (x - mean) / std;
}

std::unique_ptr<Backbone> initialised(std::unique_ptr<Backbone> backbone) {
  deterministic_init(backbone->module());
  backbone->module().eval();
  return backbone;
}

VitConfig tiny_swiglu() {
  VitConfig c;
  c.dim = 64, c.depth = 2, c.heads = 2, c.swiglu = true;
  return c;
}

std::string keys_of(torch::nn::Module& module) {
  std::map<std::string, std::string> lines;
  for (const auto& p : module.named_parameters(true)) {
    std::ostringstream shape;
    shape << p.value().sizes();
    lines[p.key()] = shape.str();
  }
  std::string text;
  for (const auto& [k, v] : lines) text += k + " " + v + "\n";
  return text;
}

std::string reference_keys(const std::string& name) {
  std::ifstream in(kFixtures / (name + ".keys.txt"));
  std::map<std::string, std::string> lines;
  for (std::string line; std::getline(in, line);) {
    const auto space = line.find(' ');
    const auto close = line.find(']');
    std::string shape = line.substr(space + 1, close - space);
    lines[line.substr(0, space)] = shape;
  }
  std::string text;
  for (const auto& [k, v] : lines) text += k + " " + v + "\n";
  return text;
}

}  // namespace

TEST_CASE("histoflow-init-v1 gives the values the Python reference prints", "[torch][init]") {
  const auto w = deterministic_values("conv1.weight", {64, 3, 7, 7});
  CHECK(w[0][0][0][0].item<float>() == Approx(0.0128785651).epsilon(1e-7));
  CHECK(w[0][0][0][1].item<float>() == Approx(0.0700462162).epsilon(1e-7));
  CHECK(w[0][0][0][2].item<float>() == Approx(-0.136308074).epsilon(1e-7));
  const auto input = deterministic_bytes("input", {1, 1, 2, 3});
  CHECK(input.flatten()[0].item<int>() == 25);
  CHECK(input.flatten()[5].item<int>() == 194);
}

TEST_CASE("parameter names and shapes are exactly DINOv2's", "[torch][vit]") {
  auto vits = find_backbone("dinov2_vits14").create();
  // The reference lists buffers too; ViTs have none, so parameters are the whole state dict.
  CHECK(keys_of(vits->module()) == reference_keys("dinov2_vits14"));
  auto tiny = make_vit(tiny_swiglu());
  CHECK(keys_of(tiny->module()) == reference_keys("dinov2_tiny_swiglu"));
  CHECK(swiglu_hidden_width(64, 4.0) == 176);
  CHECK(swiglu_hidden_width(1536, 4.0) == 4096);  // ViT-g
}

TEST_CASE("ResNet-50, full and truncated, match torchvision", "[torch][parity][resnet]") {
  for (const std::string name : {"resnet50_full", "resnet50_trunc"}) {
    const auto f = fixture(name);
    auto net = initialised(find_backbone(name == "resnet50_full" ? "resnet50" : "resnet50_trunc").create());
    torch::NoGradGuard no_grad;
    const auto out = net->forward(preprocess(f.at("input"))).pooled;
    const double error = relative_error(out, f.at("features"));
    INFO(name << ": relative L2 error " << error);
    CHECK(error < 1e-4);
  }
}

TEST_CASE("DINOv2 ViTs match the official code: plain, registers, SwiGLU, other input sizes", "[torch][parity][vit]") {
  struct Case {
    std::string fixture;
    std::function<std::unique_ptr<Backbone>()> make;
  };
  const std::vector<Case> cases = {
      {"dinov2_vits14", [] { return find_backbone("dinov2_vits14").create(); }},
      {"dinov2_vits14_reg", [] { return find_backbone("dinov2_vits14_reg").create(); }},
      {"dinov2_tiny_swiglu", [] { return make_vit(tiny_swiglu()); }},
      {"dinov2_vits14_336", [] { return find_backbone("dinov2_vits14").create(); }},
  };
  for (const auto& c : cases) {
    const auto f = fixture(c.fixture);
    auto net = initialised(c.make());
    torch::NoGradGuard no_grad;
    const auto x = preprocess(f.at("input"));
    const auto y = net->forward(x);
    const double cls = relative_error(y.cls, f.at("cls"));
    const double mean_patch = relative_error(y.patch_tokens.mean(1), f.at("patch_mean"));
    // The embeddings are tiny under this init, so the interpolation is checked on its own too.
    const double pos = relative_error(vit_position_embeddings(*net, x.size(2), x.size(3)), f.at("pos_embed_interp"));
    INFO(c.fixture << ": cls " << cls << ", mean patch " << mean_patch << ", position embeddings " << pos);
    CHECK(cls < 1e-4);
    CHECK(mean_patch < 1e-4);
    CHECK(pos < 1e-5);
    if (f.count("patch_tokens")) CHECK(relative_error(y.patch_tokens, f.at("patch_tokens")) < 1e-4);
  }
}

TEST_CASE("timm-layout ViTs match timm: UNI-style and Virchow2/UNI2-h-style", "[torch][parity][timm]") {
  VitConfig uni;
  uni.timm = true, uni.img_size = 224, uni.patch_size = 16, uni.dim = 64, uni.depth = 2, uni.heads = 2;
  uni.interpolate_antialias = true, uni.interpolate_offset = 0.0;
  VitConfig virchow = uni;
  virchow.patch_size = 14, virchow.dim = 96, virchow.mlp_ratio = 5.3375, virchow.swiglu_packed = true;
  virchow.registers = 4, virchow.no_embed_class = true;
  for (const auto& [name, config] : {std::pair{std::string("timm_uni_tiny"), uni}, std::pair{std::string("timm_virchow_tiny"), virchow}}) {
    auto net = initialised(make_vit(config));
    CHECK(keys_of(net->module()) == reference_keys(name));
    const auto f = fixture(name);
    torch::NoGradGuard no_grad;
    const auto y = net->forward(preprocess(f.at("input")));
    const double cls = relative_error(y.cls, f.at("cls")), patches = relative_error(y.patch_tokens, f.at("patch_tokens"));
    INFO(name << ": cls " << cls << ", patch tokens " << patches);
    CHECK(cls < 1e-4);
    CHECK(patches < 1e-4);
  }
  // The registered full-size configurations build with the layouts these tiny ones test.
  for (const char* name : {"uni", "virchow2", "uni2_h"}) CHECK(find_backbone(name).family == "vit");
}

TEST_CASE("the torch_encoder stage reproduces the reference through its own preprocessing", "[torch][stage]") {
  testing::shared_loader();
  const auto f = fixture("dinov2_vits14");
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"dinov2_vits14\"\nsynthetic_weights = true\noutput = \"cls+mean_patch\"\nthreads = 2");
  std::vector<PacketPtr> tiles;
  const auto input = f.at("input").contiguous();
  for (std::int64_t i = 0; i < input.size(0); ++i) {
    Packet tile;
    tile.kind = "tile";
    tile.provenance.item_id = "tile-" + std::to_string(i);
    tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {224, 224, 3});
    std::memcpy(tile.tensor.raw_data(), input[i].data_ptr(), tile.tensor.nbytes());
    tiles.push_back(make_packet(std::move(tile)));
  }
  const auto out = encoder.push_batch(tiles);
  REQUIRE(out.size() == 1);
  const histoflow::Tensor& features = out[0]->tensor;
  REQUIRE(features.shape() == std::vector<std::int64_t>{2, 768});
  const auto ours = torch::from_blob(features.raw_data(), {2, 768}, torch::kFloat32);
  CHECK(relative_error(ours.slice(1, 0, 384), f.at("cls")) < 1e-4);
  CHECK(relative_error(ours.slice(1, 384), f.at("patch_mean")) < 1e-4);
  CHECK(out[0]->rows[1].item_id == "tile-1");
  CHECK(*out[0]->attribute<std::string>("weights_sha256") == "histoflow-init-v1");
  CHECK(*out[0]->attribute<std::string>("encoder") == "dinov2_vits14");
}
