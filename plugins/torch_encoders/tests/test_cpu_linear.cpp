// cpu_linear.hpp: fp32 CPU linear layers on oneDNN's product give what torch::nn::functional::linear gives, values
// and gradients, for every shape and layout the ViTs and the DINO head hand it; other cases go to LibTorch.
#include <cstdlib>
#include <cstring>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "histoflow/torch_encoders/autocast.hpp"
#include "histoflow/torch_encoders/cpu_linear.hpp"

namespace te = histoflow::torch_encoders;
namespace F = torch::nn::functional;

namespace {

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kDouble) - want.to(torch::kDouble)).norm().item<double>() / want.to(torch::kDouble).norm().item<double>();
}

// An fp32 product's rounding: a few units of the last place over the sum's length (K up to 1,536 here).
constexpr double kTolerance = 2e-6;

struct Grads {
  torch::Tensor out, x, weight, bias;
};

// The layer's output and gradients under a fixed upstream gradient, from `layer` on fp32 leaves, or from LibTorch
// in fp64 (the reference).
template <class Layer>
Grads run(Layer&& layer, const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0, const torch::Tensor& upstream,
          torch::Dtype dtype) {
  auto x = x0.to(dtype).detach().requires_grad_(true);
  auto w = w0.to(dtype).detach().requires_grad_(true);
  auto b = b0.defined() ? b0.to(dtype).detach().requires_grad_(true) : torch::Tensor();
  auto out = layer(x, w, b);
  (out * upstream.to(dtype)).sum().backward();
  return {out.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : torch::Tensor()};
}

void check_against_fp64(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto shape = x.sizes().vec();
  shape.back() = w.size(0);
  const auto upstream = torch::randn(shape);
  const auto ours = run([](auto& a, auto& c, auto& d) { return te::linear(a, c, d); }, x, w, b, upstream, torch::kFloat);
  const auto want = run([](auto& a, auto& c, auto& d) { return F::linear(a, c, d); }, x, w, b, upstream, torch::kDouble);
  CHECK(ours.out.scalar_type() == torch::kFloat);
  CHECK(ours.out.sizes() == want.out.sizes());
  CHECK(relative_error(ours.out, want.out) < kTolerance);
  CHECK(relative_error(ours.x, want.x) < kTolerance);
  CHECK(relative_error(ours.weight, want.weight) < kTolerance);
  if (b.defined()) CHECK(relative_error(ours.bias, want.bias) < kTolerance);
}

bool built_with_onednn() {
#ifdef HISTOFLOW_EXPECT_ONEDNN
  const char* setting = std::getenv("HISTOFLOW_CPU_GEMM");
  return !(setting && std::strcmp(setting, "aten") == 0);
#else
  return false;
#endif
}

}  // namespace

TEST_CASE("bf16 inputs onto fp32 outputs: products of the bf16-rounded operands accumulated in fp32, the weight's gradient in fp32",
          "[cpu_linear]") {
  torch::manual_seed(11);
  const auto x = torch::randn({3, 70, 96}).to(torch::kBFloat16).requires_grad_(true);
  const auto w = (torch::randn({500, 96}) * 0.1).requires_grad_(true);
  const auto out = te::linear_to_fp32(x, w);
  CHECK(out.scalar_type() == torch::kFloat);
  // Without oneDNN (HISTOFLOW_CPU_GEMM=aten) LibTorch's bf16 product rounds its output and the weight's gradient to
  // bf16: half a unit in an 8-bit mantissa.
  const double fp32_tolerance = te::onednn_products_enabled() ? kTolerance : 4e-3;
  const auto w_rounded = w.detach().to(torch::kBFloat16).to(torch::kDouble);
  CHECK(relative_error(out, F::linear(x.detach().to(torch::kDouble), w_rounded)) < fp32_tolerance);
  const auto upstream = torch::randn(out.sizes());
  (out * upstream).sum().backward();
  // The backward products take the upstream gradient in bf16, as autocast's do.
  const auto g = upstream.to(torch::kBFloat16).to(torch::kDouble).reshape({-1, 500});
  CHECK(w.grad().scalar_type() == torch::kFloat);
  CHECK(relative_error(w.grad(), g.t().mm(x.detach().to(torch::kDouble).reshape({-1, 96}))) < fp32_tolerance);
  CHECK(x.grad().scalar_type() == torch::kBFloat16);
  // x's gradient is rounded to bf16 once: at most half a unit in its 8-bit mantissa.
  CHECK(relative_error(x.grad(), g.mm(w_rounded).view(x.sizes())) < 4e-3);
}

TEST_CASE("fp32 linear layers on oneDNN's product match LibTorch's in values and gradients", "[cpu_linear]") {
  torch::manual_seed(7);
  // Where the build found oneDNN, these cases run on it (HISTOFLOW_CPU_GEMM=aten is the only way out).
  CHECK(te::onednn_products_enabled() == built_with_onednn());

  SECTION("token batches with a bias: the ViT's qkv and MLP shapes, and odd sizes") {
    check_against_fp64(torch::randn({4, 257, 384}), torch::randn({1152, 384}) * 0.05, torch::randn({1152}));
    check_against_fp64(torch::randn({3, 37, 50}), torch::randn({13, 50}), torch::randn({13}));
    check_against_fp64(torch::randn({1, 1}), torch::randn({1, 1}), torch::randn({1}));
  }
  SECTION("one row: the output is new memory, the bias stays as it was") {
    const auto bias = torch::randn({64});
    const auto before = bias.clone();
    check_against_fp64(torch::randn({1, 32}), torch::randn({64, 32}), bias);
    CHECK(torch::equal(bias, before));
  }
  SECTION("without a bias: the DINO head's prototype layer") {
    check_against_fp64(torch::randn({300, 256}), torch::randn({4096, 256}) * 0.05, torch::Tensor());
  }
  SECTION("inputs and weights that are views, not contiguous") {
    check_against_fp64(torch::randn({50, 6, 31}).transpose(0, 1), torch::randn({31, 17}).t(), torch::randn({34}).slice(0, 0, 34, 2));
  }
  SECTION("a frozen weight gets no gradient, the input still does") {
    const auto x = torch::randn({5, 9}, torch::requires_grad());
    const auto w = torch::randn({4, 9});
    const auto b = torch::randn({4});
    te::linear(x, w, b).sum().backward();
    CHECK(!w.grad().defined());
    CHECK(relative_error(x.grad(), torch::ones({5, 4}).mm(w)) < kTolerance);
  }
  SECTION("without gradient mode the output records no graph") {
    torch::NoGradGuard no_grad;
    const auto w = torch::randn({8, 16}, torch::requires_grad());
    const auto x = torch::randn({2, 3, 16});
    const auto out = te::linear(x, w, torch::Tensor());
    CHECK(!out.requires_grad());
    CHECK(relative_error(out, F::linear(x.to(torch::kDouble), w.to(torch::kDouble))) < kTolerance);
  }
  SECTION("no rows: an empty output of the right width") {
    const auto out = te::linear(torch::randn({0, 16}), torch::randn({8, 16}), torch::randn({8}));
    CHECK(out.sizes() == torch::IntArrayRef({0, 8}));
  }
  SECTION("widths that do not fit are refused") {
    CHECK_THROWS_WITH(te::linear(torch::randn({2, 15}), torch::randn({8, 16}), torch::Tensor()),
                      Catch::Contains("15") && Catch::Contains("16"));
  }
  SECTION("the in-place residual product adds into its output") {
    auto out = torch::randn({40, 24});
    const auto before = out.clone();
    const auto rows = torch::randn({40, 96}), w = torch::randn({24, 96});
    te::add_product_(out, rows, w);
    CHECK(relative_error(out, before.to(torch::kDouble) + rows.to(torch::kDouble).mm(w.to(torch::kDouble).t())) < kTolerance);
  }
  SECTION("under CPU autocast the product is left to autocast: bf16, as LibTorch's linear gives") {
    const te::AutocastScope autocast(c10::DeviceType::CPU, torch::kBFloat16);
    const auto x = torch::randn({6, 32}), w = torch::randn({8, 32});
    const auto out = te::linear(x, w, torch::Tensor());
    CHECK(out.scalar_type() == torch::kBFloat16);
    CHECK(torch::equal(out, F::linear(x, w)));
  }
}
