// The shared model cache: stages asking for the same backbone, weights, device and precision get one model.
#include <catch2/catch.hpp>

#include "histoflow/torch_encoders/backbone.hpp"
#include "model_cache.hpp"

using namespace histoflow::torch_encoders;

TEST_CASE("equal requests share one loaded model while it is held; another precision or backbone loads its own", "[torch][cache]") {
  const BackboneSpec& spec = find_backbone("resnet50_trunc");
  const ModelRequest fp32{&spec, {}, true, torch::kCPU, torch::kFloat32};
  const std::size_t before = models_loaded();
  SharedModel first = shared_model(fp32);
  SharedModel second = shared_model(fp32);
  CHECK(first.backbone.get() == second.backbone.get());
  CHECK(first.identity == "histoflow-init-v1");
  CHECK(models_loaded() == before + 1);

  ModelRequest bf16 = fp32;
  bf16.dtype = torch::kBFloat16;
  SharedModel other = shared_model(bf16);
  CHECK(other.backbone.get() != first.backbone.get());
  CHECK(models_loaded() == before + 2);

  // Once no stage holds it, the memory is given back: a later request loads it again.
  first = {};
  second = {};
  SharedModel again = shared_model(fp32);
  CHECK(models_loaded() == before + 3);
}
