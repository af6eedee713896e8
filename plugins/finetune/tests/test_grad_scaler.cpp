#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <limits>

#include "grad_scaler.hpp"

using histoflow::finetune::GradScaler;

namespace {

torch::Tensor parameter_with_grad(std::vector<float> grad) {
  auto p = torch::zeros({static_cast<std::int64_t>(grad.size())}).requires_grad_(true);
  p.mutable_grad() = torch::tensor(grad);
  return p;
}

}  // namespace

// The fp16 path runs on a GPU only; its loss-scaling rule is checked here on its own.
TEST_CASE("fp16 loss scaling follows GradScaler: exact unscaling, skip and halve on overflow, double after 2000 good steps", "[scaler]") {
  GradScaler scaler;
  REQUIRE(scaler.scale() == 65536.0);

  SECTION("finite gradients are divided exactly and the step is taken; undefined gradients are passed over") {
    const auto p = parameter_with_grad({65536.0f, -3.0f * 65536.0f, 1.0f});
    const auto frozen = torch::zeros({2}).requires_grad_(true);  // no gradient, as the frozen last layer may have
    CHECK(scaler.unscale({p, frozen}));
    CHECK(torch::equal(p.grad(), torch::tensor({1.0f, -3.0f, 1.0f / 65536.0f})));
  }
  SECTION("an inf or a NaN in any parameter skips the step and halves the scale, restarting the count") {
    for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
      GradScaler s;
      for (int i = 0; i < 1999; ++i) s.update(true);  // one step short of growing
      const auto good = parameter_with_grad({1.0f}), overflowed = parameter_with_grad({2.0f, bad});
      const bool step = s.unscale({good, overflowed});
      CHECK_FALSE(step);
      s.update(step);
      CHECK(s.scale() == 32768.0);
      s.update(true);  // the count started again: one good step does not double
      CHECK(s.scale() == 32768.0);
    }
  }
  SECTION("the scale doubles on the 2000th consecutive good step, not before") {
    for (int i = 0; i < 1999; ++i) scaler.update(true);
    CHECK(scaler.scale() == 65536.0);
    scaler.update(true);
    CHECK(scaler.scale() == 131072.0);
  }
  SECTION("its state is part of the checkpoint and restores the count as well as the scale") {
    for (int i = 0; i < 1500; ++i) scaler.update(true);
    scaler.update(false);
    for (int i = 0; i < 1999; ++i) scaler.update(true);
    GradScaler restored;
    restored.restore(scaler.state());
    CHECK(restored.scale() == 32768.0);
    restored.update(true);
    CHECK(restored.scale() == 65536.0);
  }
}
