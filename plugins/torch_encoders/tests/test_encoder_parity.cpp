// Parity with the reference implementations: torchvision's ResNet-50, the official DINOv2 code, timm (UNI- and
// Virchow-style ViTs, CTransPath's Swin-T, Phikon's ViT in HuggingFace names), on
// deterministic weights (histoflow-init-v1, generated identically on both sides) and a deterministic input.
// Fixtures come from tools/parity/make_*_fixtures.py; the tests need no Python. The [parity] and [stage] cases run
// their models on HISTOFLOW_TEST_DEVICE (default cpu; tools/gpu/check runs them on CUDA).
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "encoder_fixtures.hpp"
#include "hf_vit.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/safetensors.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "histoflow/torch_encoders/weights.hpp"
#include "support/graph_helpers.hpp"
#include "swin.hpp"

using namespace histoflow;
using namespace histoflow::torch_encoders;
using namespace histoflow::torch_encoders::fixtures;

namespace {

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
    auto net = on_test_device(initialised(find_backbone(name == "resnet50_full" ? "resnet50" : "resnet50_trunc").create()));
    torch::NoGradGuard no_grad;
    const auto out = net->forward(preprocess(f.at("input")).to(test_device())).pooled;
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
    auto net = on_test_device(initialised(c.make()));
    torch::NoGradGuard no_grad;
    const auto x = preprocess(f.at("input")).to(test_device());
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

TEST_CASE("timm-layout ViTs match timm: UNI-, Virchow2- and UNI2-h-style", "[torch][parity][timm]") {
  VitConfig uni;
  uni.timm = true, uni.img_size = 224, uni.patch_size = 16, uni.dim = 64, uni.depth = 2, uni.heads = 2;
  uni.interpolate_antialias = true, uni.interpolate_offset = 0.0;
  VitConfig virchow = uni;  // Virchow2: position embeddings for cls, the 4 registers and the patches
  virchow.patch_size = 14, virchow.dim = 96, virchow.mlp_ratio = 5.3375, virchow.swiglu_packed = true;
  virchow.registers = 4, virchow.position_prefix_tokens = 5;
  VitConfig uni2 = virchow;  // UNI2-h: no_embed_class, position embeddings for the patches only
  uni2.mlp_ratio = 2.66667 * 2, uni2.registers = 8, uni2.position_prefix_tokens = 0;
  for (const auto& [name, config] : {std::pair{std::string("timm_uni_tiny"), uni}, std::pair{std::string("timm_virchow_tiny"), virchow},
                                     std::pair{std::string("timm_uni2_tiny"), uni2}}) {
    auto net = on_test_device(initialised(make_vit(config)));
    CHECK(keys_of(net->module()) == reference_keys(name));
    const auto f = fixture(name);
    torch::NoGradGuard no_grad;
    const auto y = net->forward(preprocess(f.at("input")).to(test_device()));
    const double cls = relative_error(y.cls, f.at("cls")), patches = relative_error(y.patch_tokens, f.at("patch_tokens"));
    // timm's resample to a 168 px grid keeps the embedded prefix rows: checked on its own (the init makes them tiny).
    const double pos = relative_error(vit_position_embeddings(*net, 168, 168), f.at("pos_embed_interp"));
    INFO(name << ": cls " << cls << ", patch tokens " << patches << ", position embeddings at 168 px " << pos);
    CHECK(cls < 1e-4);
    CHECK(patches < 1e-4);
    CHECK(pos < 1e-5);
  }
  // The registered full-size configurations build with the layouts these tiny ones test.
  for (const char* name : {"uni", "virchow2", "uni2_h"}) CHECK(find_backbone(name).family == "vit");
}

TEST_CASE("the torch_encoder stage reproduces the reference through its own preprocessing", "[torch][stage]") {
  testing::shared_loader();
  const auto f = fixture("dinov2_vits14");
  StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"dinov2_vits14\"\nsynthetic_weights = true\noutput = \"cls+mean_patch\"\nthreads = 2\n"
                       "device = \"" + test_device().str() + "\"");
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

namespace {

// Every name and shape a module stores, plus what it computes instead of storing (Swin's buffers).
std::string state_keys_of(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& computed = {}) {
  std::map<std::string, std::string> lines;
  const auto add = [&](const std::string& key, const torch::Tensor& t) {
    std::ostringstream shape;
    shape << t.sizes();
    lines[key] = shape.str();
  };
  for (const auto& p : module.named_parameters(true)) add(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) add(b.key(), b.value());
  for (const auto& [key, t] : computed) add(key, t);
  std::string text;
  for (const auto& [k, v] : lines) text += k + " " + v + "\n";
  return text;
}

bool same_state(torch::nn::Module& a, torch::nn::Module& b) {
  auto pb = b.named_parameters(true);
  for (const auto& p : a.named_parameters(true))
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

SwinConfig ctranspath_tiny() {  // tools/parity/make_ctranspath_phikon_fixtures.py: SWIN_TINY
  SwinConfig c;
  c.img_size = 112, c.embed_dim = 8, c.depths = {2, 2, 2}, c.heads = {1, 2, 2}, c.window = 7;
  return c;
}

VitConfig phikon_tiny() {  // VIT_TINY there: Phikon's layout in small
  VitConfig c;
  c.timm = true, c.layer_scale = false, c.eps = 1e-12;
  c.img_size = 224, c.patch_size = 16, c.dim = 32, c.depth = 2, c.heads = 2;
  return c;
}

}  // namespace

TEST_CASE("CTransPath (Swin-T with a convolutional stem) matches timm, current and 0.5.4", "[torch][parity][swin]") {
  const auto f = fixture("ctranspath_tiny");
  const auto x = preprocess(f.at("input"));
  torch::NoGradGuard no_grad;
  auto net = initialised(make_swin(ctranspath_tiny()));
  SECTION("deterministic weights") {
    auto on_device = on_test_device(initialised(make_swin(ctranspath_tiny())));
    report("ctranspath_tiny pooled (histoflow-init-v1)", relative_error(on_device->forward(x.to(test_device())).pooled, f.at("pooled")));
  }

  SECTION("the published checkpoint layout (timm 0.5.4, under 'model', buffers stored) loads and gives the same features") {
    const auto file = kFixtures / "ctranspath_tiny_published.pth";
    const LoadedWeights w = read_weights(file);
    CHECK(w.nesting == "model");
    CHECK(w.tensors.count("layers.0.downsample.reduction.weight"));
    CHECK(w.tensors.count("layers.0.blocks.1.attn_mask"));
    auto loaded = make_swin(ctranspath_tiny());
    CHECK(load_into(*loaded, w, file).empty());
    loaded->module().eval();
    CHECK(same_state(loaded->module(), net->module()));
    loaded->module().to(test_device());
    report("ctranspath_tiny pooled (published checkpoint)", relative_error(loaded->forward(x.to(test_device())).pooled, f.at("pooled")));
  }
  SECTION("timm >= 0.9 layout: merges at the start of the next stage, no stored buffers") {
    LoadedWeights w = read_weights(kFixtures / "ctranspath_tiny_published.pth");
    LoadedWeights moved;
    for (const auto& [key, tensor] : w.tensors) {
      if (key.find("relative_position_index") != std::string::npos || key.find("attn_mask") != std::string::npos) continue;
      std::string name = key;
      if (key.rfind("layers.", 0) == 0 && key.find(".downsample.") == 8) name = "layers." + std::to_string(key[7] - '0' + 1) + key.substr(8);
      moved.tensors["module." + name] = tensor;
    }
    CHECK(moved.tensors.count("module.layers.1.downsample.reduction.weight"));
    auto loaded = make_swin(ctranspath_tiny());
    CHECK(load_into(*loaded, moved, "moved.safetensors") == "module.");
    CHECK(same_state(loaded->module(), net->module()));
  }
  SECTION("stored buffers must be the ones this layout computes") {
    LoadedWeights w = read_weights(kFixtures / "ctranspath_tiny_published.pth");
    w.tensors["layers.1.blocks.1.attn_mask"] = w.tensors.at("layers.1.blocks.1.attn_mask").clone().fill_(0);
    auto loaded = make_swin(ctranspath_tiny());
    CHECK_THROWS_WITH(load_into(*loaded, w, "tampered.pth"), Catch::Contains("tampered.pth") && Catch::Contains("layers.1.blocks.1.attn_mask"));
  }
  SECTION("wrong-architecture weights: every missing and unexpected key in one error") {
    const auto file = kFixtures / "phikon_tiny_hf.safetensors";
    auto loaded = make_swin(ctranspath_tiny());
    CHECK_THROWS_WITH(load_into(*loaded, read_weights(file), file),
                      Catch::Contains("phikon_tiny_hf.safetensors") && Catch::Contains("missing") &&
                          Catch::Contains("layers.0.blocks.0.attn.qkv.weight") &&
                          Catch::Contains("unexpected") && Catch::Contains("embeddings.cls_token"));
    // The tiny model's weights in the registered full-size configuration: the shapes are named.
    auto full = find_backbone("ctranspath").create();
    CHECK_THROWS_WITH(load_into(*full, read_weights(kFixtures / "ctranspath_tiny_published.pth"), "tiny.pth"),
                      Catch::Contains("with another shape") && Catch::Contains("layers.0.blocks.0.attn.qkv.weight") &&
                          Catch::Contains("missing") && Catch::Contains("layers.2.blocks.2.attn.qkv.weight"));
  }
  SECTION("inputs of another size are refused with the size the windows were laid out for") {
    CHECK_THROWS_WITH(net->forward(torch::zeros({1, 3, 224, 224})), Catch::Contains("112x112"));
  }
}

TEST_CASE("CTransPath's names and shapes, stored and computed, are exactly the published checkpoint's", "[torch][swin]") {
  auto tiny = make_swin(ctranspath_tiny());
  CHECK(state_keys_of(tiny->module(), swin_computed_buffers(ctranspath_tiny())) == reference_keys("ctranspath_tiny"));
  const auto& spec = find_backbone("ctranspath");
  CHECK(spec.dim == 768);
  CHECK(spec.outputs == std::vector<std::string>{"pooled"});
  auto full = spec.create();
  CHECK(state_keys_of(full->module(), swin_computed_buffers(SwinConfig{})) == reference_keys("ctranspath"));
  // A checkpoint with the full published layout (computed buffers equal to ours) loads strictly.
  LoadedWeights published = weights_shaped_like("ctranspath");
  for (const auto& [key, buffer] : swin_computed_buffers(SwinConfig{})) published.tensors.at(key) = buffer;
  CHECK_NOTHROW(load_into(*full, published, "ctranspath.pth"));
}

TEST_CASE("Phikon (HuggingFace ViT layout) matches the reference ViT with eps 1e-12", "[torch][parity][phikon]") {
  const auto f = fixture("phikon_tiny");
  const auto x = preprocess(f.at("input"));
  torch::NoGradGuard no_grad;
  auto net = initialised(make_hf_vit(phikon_tiny()));
  SECTION("deterministic weights") {
    const auto y = on_test_device(initialised(make_hf_vit(phikon_tiny())))->forward(x.to(test_device()));
    report("phikon_tiny cls (histoflow-init-v1)", relative_error(y.cls, f.at("cls")));
    report("phikon_tiny patch tokens (histoflow-init-v1)", relative_error(y.patch_tokens, f.at("patch_tokens")));
    report("phikon_tiny mean patch (histoflow-init-v1)", relative_error(y.patch_tokens.mean(1), f.at("patch_mean")));
  }

  SECTION("HuggingFace ViTModel weights (query/key/value, pooler) load onto the same parameters") {
    const auto file = kFixtures / "phikon_tiny_hf.safetensors";
    const LoadedWeights w = read_weights(file);
    CHECK(w.tensors.count("encoder.layer.0.attention.attention.query.weight"));
    CHECK(w.tensors.count("pooler.dense.weight"));
    auto loaded = make_hf_vit(phikon_tiny());
    CHECK(load_into(*loaded, w, file).empty());
    loaded->module().eval();
    CHECK(same_state(loaded->module(), net->module()));
    loaded->module().to(test_device());
    report("phikon_tiny cls (HF checkpoint)", relative_error(loaded->forward(x.to(test_device())).cls, f.at("cls")));
    // ViTForImageClassification keeps the model under "vit." next to its classifier.
    LoadedWeights wrapped;
    for (const auto& [key, tensor] : w.tensors) wrapped.tensors["vit." + key] = tensor;
    wrapped.tensors["classifier.weight"] = torch::zeros({2, 32});
    auto again = make_hf_vit(phikon_tiny());
    CHECK(load_into(*again, wrapped, "classifier.safetensors") == "vit.");
    CHECK(same_state(again->module(), net->module()));
  }
  SECTION("wrong-architecture weights: every missing and unexpected key in one error") {
    LoadedWeights w = read_weights(kFixtures / "phikon_tiny_hf.safetensors");
    w.tensors.erase("encoder.layer.1.attention.attention.query.weight");
    w.tensors["encoder.layer.0.attention.attention.extra.weight"] = torch::zeros({32, 32});
    auto loaded = make_hf_vit(phikon_tiny());
    CHECK_THROWS_WITH(load_into(*loaded, w, "broken.safetensors"),
                      Catch::Contains("broken.safetensors") && Catch::Contains("1 missing: blocks.1.attn.qkv.weight") &&
                          Catch::Contains("encoder.layer.1.attention.attention.key.weight") &&
                          Catch::Contains("encoder.layer.1.attention.attention.value.weight") &&
                          Catch::Contains("encoder.layer.0.attention.attention.extra.weight"));
    const auto swin = kFixtures / "ctranspath_tiny_published.pth";
    CHECK_THROWS_WITH(load_into(*loaded, read_weights(swin), swin),
                      Catch::Contains("missing") && Catch::Contains("cls_token") && Catch::Contains("unexpected") &&
                          Catch::Contains("layers.0.blocks.0.attn.qkv.weight"));
    auto full = find_backbone("phikon").create();
    CHECK_THROWS_WITH(load_into(*full, read_weights(kFixtures / "phikon_tiny_hf.safetensors"), "tiny.safetensors"),
                      Catch::Contains("with another shape") && Catch::Contains("blocks.0.attn.qkv.weight"));
  }
}

TEST_CASE("Phikon's registered configuration takes the published HuggingFace names and shapes", "[torch][phikon]") {
  auto tiny = make_hf_vit(phikon_tiny());
  CHECK_NOTHROW(load_into(*tiny, weights_shaped_like("phikon_tiny"), "phikon_tiny.keys.txt"));
  const auto& spec = find_backbone("phikon");
  CHECK(spec.dim == 768);
  CHECK(spec.outputs.front() == "cls");
  auto full = spec.create();
  CHECK_NOTHROW(load_into(*full, weights_shaped_like("phikon"), "phikon.keys.txt"));
  // Strict in both directions: the timm names it maps onto are exactly the module's.
  LoadedWeights w = weights_shaped_like("phikon");
  hf_vit_keys_to_timm(w.tensors, "phikon.keys.txt");
  std::map<std::string, torch::Tensor> learned;
  for (const auto& [key, tensor] : w.tensors)
    if (key.rfind("pooler.", 0) != 0) learned[key] = tensor;
  CHECK(learned.size() == full->module().named_parameters(true).size());
  for (const auto& p : full->module().named_parameters(true)) CHECK(learned.count(p.key()));
}

TEST_CASE("ctranspath and phikon run through the torch_encoder stage with their default outputs", "[torch][stage]") {
  testing::shared_loader();
  for (const auto& [backbone, width] : {std::pair{std::string("ctranspath"), 768}, std::pair{std::string("phikon"), 768}}) {
    StageHarness encoder("use = \"torch_encoder\"\nbackbone = \"" + backbone + "\"\nsynthetic_weights = true\nthreads = 2\ndevice = \"" +
                         test_device().str() + "\"");
    Packet tile;
    tile.kind = "tile";
    tile.provenance.item_id = "tile-0";
    tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {256, 256, 3});  // resized to 224 by the stage
    const auto out = encoder.push_batch({make_packet(std::move(tile))});
    REQUIRE(out.size() == 1);
    CHECK(out[0]->tensor.shape() == std::vector<std::int64_t>{1, width});
    CHECK(*out[0]->attribute<std::string>("output") == (backbone == "ctranspath" ? "pooled" : "cls"));
  }
}

TEST_CASE("preparing for inference (BatchNorm and LayerScale folded into weights) keeps fp32 features", "[torch][prepare]") {
  torch::manual_seed(5);
  const auto images = torch::randn({2, 3, 224, 224});
  for (const std::string name : {"resnet50_trunc", "dinov2_vits14"}) {  // BatchNorm folding; LayerScale folding
    const BackboneSpec& spec = find_backbone(name);
    auto reference = initialised(spec.create());  // eval mode, nothing folded
    auto prepared = initialised(spec.create());
    {
      // Non-trivial BatchNorm statistics and LayerScale factors, so that folding them is really exercised.
      torch::NoGradGuard no_grad;
      for (auto* backbone : {reference.get(), prepared.get()})
        for (auto& b : backbone->module().named_buffers(true))
          if (b.key().find("running_var") != std::string::npos) b.value().fill_(1.7);
          else if (b.key().find("running_mean") != std::string::npos) b.value().fill_(0.05);
    }
    prepare_for_inference(*prepared, spec, torch::kCPU, torch::kFloat32);
    torch::InferenceMode inference;
    const BackboneOutput a = reference->forward(images), b = prepared->forward(images.contiguous(
                                                              spec.channels_last ? torch::MemoryFormat::ChannelsLast
                                                                                 : torch::MemoryFormat::Contiguous));
    const torch::Tensor ya = a.pooled.defined() ? a.pooled : a.cls, yb = b.pooled.defined() ? b.pooled : b.cls;
    const double error = relative_error(yb, ya);
    INFO(name << ": relative L2 error of the prepared model " << error);
    CHECK(error < 1e-5);
  }
}
