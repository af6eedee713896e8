// Checkpoints as their authors publish them: the key and shape manifest of every registered full-size backbone
// (tools/parity/make_key_manifests.py, from the reference code), and DINOv2 teacher checkpoints as the official
// training code saves them (tools/parity/make_teacher_fixtures.py), encoded against the official features.
#include <catch2/catch.hpp>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <chrono>
#include <set>

#include "encoder_fixtures.hpp"
#include "histoflow/harness.hpp"
#include "histoflow/torch_encoders/backbone.hpp"
#include "histoflow/torch_encoders/vit.hpp"
#include "histoflow/torch_encoders/weights.hpp"
#include "support/graph_helpers.hpp"
#include "swin.hpp"

using namespace histoflow;
using namespace histoflow::torch_encoders;
using namespace histoflow::torch_encoders::fixtures;

namespace {

// Registered backbones whose weights have no published layout: TorchScript files carry their own module, the
// example plugin's CNN (plugins/example_backbone) documents its names in its source.
// The last is registered by a test below.
const std::string kTinyTeacher = "test_tiny_teacher_vit";
const std::set<std::string> kWithoutManifest = {"torchscript", "example_small_cnn", kTinyTeacher};

// The manifest a backbone's published weights follow: resnet50_trunc loads the full ImageNet file, and RetCCL's
// best_ckpt.pth holds the same torchvision names without fc (its loader sets fc to Identity and loads strictly).
std::string manifest_of(const std::string& backbone) {
  return backbone == "resnet50_trunc" || backbone == "retccl" ? "resnet50" : backbone;
}

using Shapes = std::map<std::string, std::vector<std::int64_t>>;

std::string difference(const Shapes& published, const Shapes& model) {
  std::ostringstream text;
  const auto shape = [](const std::vector<std::int64_t>& s) { return c10::IntArrayRef(s); };
  for (const auto& [key, s] : published)
    if (!model.count(key)) text << "\n  only published: " << key << " " << shape(s);
    else if (model.at(key) != s) text << "\n  " << key << ": published " << shape(s) << ", model " << shape(model.at(key));
  for (const auto& [key, s] : model)
    if (!published.count(key)) text << "\n  only in the model: " << key << " " << shape(s);
  return text.str();
}

// The backbone's names and shapes without its memory: built with LibTorch's Meta dispatch key included, its
// initialisers run as shape-only kernels and never touch the memory they were given (ViT-g/14 holds 4.4 GB; built,
// initialised and loaded for real, the four largest backbones took over a minute here). Its tensors are never read;
// the tests use check_fits, load_into's strict match without the copy. Swin (CTransPath, 28 M parameters) is built
// for real: its constructor computes attention masks with kernels that Meta lacks.
template <class Make>
std::unique_ptr<Backbone> with_shape_kernels(Make&& make) {
  // The whole thread-local key set is restored afterwards: IncludeDispatchKeyGuard's destructor removes only the
  // functionality bits and would leave the Meta backend bit included for every later operation on this thread.
  auto keys = c10::impl::tls_local_dispatch_key_set();
  keys.included_ = keys.included_ | c10::DispatchKeySet(c10::DispatchKey::Meta);
  c10::impl::ForceDispatchKeyGuard shape_kernels(keys);
  return make();
}

std::unique_ptr<Backbone> shapes_only(const BackboneSpec& spec) {
  if (spec.family == "swin") return spec.create();
  return with_shape_kernels(spec.create);
}

VitConfig teacher_config(int dim, int depth) {  // tools/parity/make_teacher_fixtures.py CASES, at the hub's 518 px
  VitConfig c;
  c.dim = dim, c.depth = depth, c.heads = 2;
  return c;
}

}  // namespace

TEST_CASE("every registered backbone takes its published checkpoint's names and shapes, strictly", "[torch][manifest]") {
  testing::shared_loader();  // plugins that register backbones too: each needs a manifest or a reason here
  const auto started = std::chrono::steady_clock::now();
  std::size_t checked = 0;
  for (const std::string& name : backbone_names()) {
    if (kWithoutManifest.count(name)) continue;
    const std::string manifest = manifest_of(name);
    INFO("backbone " << name << ", manifest tests/fixtures/encoders/" << manifest << ".keys.txt");
    REQUIRE(std::filesystem::exists(kFixtures / (manifest + ".keys.txt")));
    LoadedWeights published = weights_shaped_like(manifest);
    // Swin's relative-position indices and attention masks are compared with what the layout computes.
    if (name == "ctranspath")
      for (const auto& [key, buffer] : swin_computed_buffers(SwinConfig{})) published.tensors.at(key) = buffer;
    auto backbone = shapes_only(find_backbone(name));
    // Both ways: what the published file holds, once the backbone has mapped it into its own names and set aside
    // what it does not use (classifier heads, the truncated ResNet's layer4), is exactly what the module stores.
    StateDict adapted = published.tensors;
    backbone->adapt_checkpoint(adapted, manifest + ".keys.txt");
    Shapes from_file, in_model;
    for (const auto& [key, tensor] : adapted)
      if (!backbone->ignorable_key(key)) from_file[key] = tensor.sizes().vec();
    for (const auto& p : backbone->module().named_parameters(true)) in_model[p.key()] = p.value().sizes().vec();
    for (const auto& b : backbone->module().named_buffers(true)) in_model[b.key()] = b.value().sizes().vec();
    INFO(difference(from_file, in_model));
    CHECK(from_file == in_model);
    CHECK(check_fits(*backbone, published, manifest + ".keys.txt").empty());
    ++checked;
  }
  CHECK(checked == 16);  // 8 DINOv2, uni, uni2_h, virchow2, phikon, ctranspath, resnet50, resnet50_trunc, retccl
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "manifests: " << checked << " full-size backbones built and matched in " << seconds << " s" << std::endl;
}

TEST_CASE("the published layouts of Virchow2 and UNI2-h: which tokens carry position embeddings", "[torch][manifest]") {
  // Virchow2 (no no_embed_class): [1, 1 + 4 + 16 * 16, 1280]; UNI2-h (no_embed_class): [1, 16 * 16, 1536].
  for (const auto& [name, rows] : {std::pair{std::string("virchow2"), 261}, std::pair{std::string("uni2_h"), 256}}) {
    const auto shapes = reference_shapes(name);
    const auto pos = std::find_if(shapes.begin(), shapes.end(), [](const auto& s) { return s.first == "pos_embed"; });
    REQUIRE(pos != shapes.end());
    CHECK(pos->second[1] == rows);
    CHECK(shapes_only(find_backbone(name))->trainable_vit()->position_grid() == 16);
  }
  // The layout Virchow2 was once registered with (patch-only embeddings) is refused by its published file.
  VitConfig patches_only;
  patches_only.timm = true, patches_only.img_size = 224, patches_only.dim = 1280, patches_only.depth = 32, patches_only.heads = 16;
  patches_only.mlp_ratio = 5.3375, patches_only.swiglu_packed = true, patches_only.registers = 4, patches_only.position_prefix_tokens = 0;
  auto wrong = with_shape_kernels([&] { return make_vit(patches_only); });
  CHECK_THROWS_WITH(check_fits(*wrong, weights_shaped_like("virchow2"), "virchow2.keys.txt"),
                    Catch::Contains("with another shape") && Catch::Contains("pos_embed (file [1, 261, 1280], model [1, 256, 1280])"));
}

TEST_CASE("DINOv2 teacher checkpoints as the official training saves them encode as the official code does", "[torch][parity][teacher]") {
  struct Case {
    std::string name;
    VitConfig config;
  };
  // The paper's layout: a hub-built model whose pos_embed was resized to 16 x 16 by the study's fork; and the
  // official training's block_chunks (blocks.<chunk>.<block>.*), both saved as {"teacher": {backbone.*, heads}}.
  for (const Case& c : {Case{"dinov2_teacher_paper", teacher_config(64, 2)}, Case{"dinov2_teacher_chunked", teacher_config(32, 4)}}) {
    const auto file = kFixtures / (c.name + ".pth");
    const LoadedWeights weights = read_weights(file);
    CHECK(weights.nesting == "teacher");
    CHECK(weights.tensors.count("dino_head.last_layer.weight_g"));
    CHECK(weights.tensors.count("ibot_head.mlp.0.weight"));
    auto backbone = make_vit(c.config);
    CHECK(backbone->trainable_vit()->position_grid() == 37);  // built for 518 px, as the hub models are
    CHECK(load_into(*backbone, weights, file) == "backbone.");
    CHECK(backbone->trainable_vit()->position_grid() == 16);  // the stored grid, interpolated per input from here
    backbone->module().eval();
    const auto f = fixture(c.name);
    torch::NoGradGuard no_grad;
    for (const std::string size : {"224", "168"}) {  // the stored grid as it is, and interpolated to 12 x 12
      const auto y = backbone->forward(preprocess(f.at("input_" + size)));
      report(c.name + " cls at " + size + " px", relative_error(y.cls, f.at("cls_" + size)));
      report(c.name + " patch tokens at " + size + " px", relative_error(y.patch_tokens, f.at("patch_tokens_" + size)));
    }
  }
}

TEST_CASE("block chunks are flattened by their global block index, under any prefix", "[torch][weights]") {
  const auto file = kFixtures / "dinov2_teacher_chunked.pth";
  const LoadedWeights chunked = read_weights(file);
  CHECK(chunked.tensors.count("backbone.blocks.1.2.attn.qkv.weight"));
  CHECK(chunked.tensors.count("backbone.blocks.1.3.mlp.fc2.bias"));
  auto reference = make_vit(teacher_config(32, 4));
  load_into(*reference, chunked, file);

  SECTION("another prefix: a student's chunks load onto the same blocks") {
    LoadedWeights student;
    for (const auto& [key, tensor] : chunked.tensors)
      if (key.rfind("backbone.", 0) == 0) student.tensors["student." + key] = tensor;
    auto loaded = make_vit(teacher_config(32, 4));
    CHECK(load_into(*loaded, student, "student.pth") == "student.backbone.");
    auto a = loaded->module().named_parameters(true);
    for (const auto& p : reference->module().named_parameters(true)) CHECK(torch::equal(p.value(), a[p.key()]));
  }
  SECTION("two chunks claiming the same block are refused, naming both keys") {
    LoadedWeights twice = chunked;
    twice.tensors["backbone.blocks.0.2.attn.qkv.weight"] = chunked.tensors.at("backbone.blocks.1.2.attn.qkv.weight");
    auto loaded = make_vit(teacher_config(32, 4));
    CHECK_THROWS_WITH(load_into(*loaded, twice, "twice.pth"),
                      Catch::Contains("twice.pth") && Catch::Contains("backbone.blocks.0.2.attn.qkv.weight") &&
                          Catch::Contains("backbone.blocks.1.2.attn.qkv.weight") && Catch::Contains("backbone.blocks.2.attn.qkv.weight"));
  }
}

TEST_CASE("the encoder records the position grid a ViT's weights hold", "[torch][stage]") {
  testing::shared_loader();
  static const bool registered = [] {  // the tiny teacher's architecture, under a name of its own
    BackboneSpec spec;
    spec.name = kTinyTeacher;
    spec.family = "vit";
    spec.description = "the architecture of tests/fixtures/encoders/dinov2_teacher_paper.pth (tests only)";
    spec.dim = 64;
    spec.outputs = {"cls"};
    spec.create = [] { return make_vit(teacher_config(64, 2)); };
    register_backbone(spec);
    return true;
  }();
  REQUIRE(registered);
  Packet tile;
  tile.kind = "tile";
  tile.provenance.item_id = "tile-0";
  tile.tensor = histoflow::Tensor::zeros(DType::UInt8, {224, 224, 3});
  const auto file = (kFixtures / "dinov2_teacher_paper.pth").string();
  const auto grid_of = [&](const std::string& config) -> std::int64_t {  // -1 when the attribute is absent
    StageHarness encoder("use = \"torch_encoder\"\nthreads = 2\n" + config);
    const auto out = encoder.push_batch({make_packet(Packet(tile))});
    REQUIRE(out.size() == 1);
    const auto* grid = out[0]->attribute<std::int64_t>("position_grid");
    return grid ? *grid : -1;
  };
  CHECK(grid_of("backbone = \"" + kTinyTeacher + "\"\nweights = \"" + file + "\"") == 16);  // the fork's, not 37
  CHECK(grid_of("backbone = \"dinov2_vits14\"\nsynthetic_weights = true") == 37);
  CHECK(grid_of("backbone = \"resnet50_trunc\"\nsynthetic_weights = true") == -1);
}
