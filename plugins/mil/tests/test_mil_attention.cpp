// Attention in memory linear in the tiles: blocked attention against the whole computation (output,
// log-sum-exp, gradients, dropout), the counter-based dropout mask, recomputation in backward, TransMIL's Nystrom
// attention against its formula, and whole-bag training of the attention aggregators.
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "attention_dropout.hpp"
#include "attention_layers.hpp"
#include "blocked_attention.hpp"
#include "nystrom_attention.hpp"
#include "recompute_in_backward.hpp"
#include "resident_memory.hpp"
#include "trainer.hpp"

using namespace histoflow::mil;

namespace {

struct Inputs {
  torch::Tensor q, k, v;
};

Inputs random_inputs(std::int64_t heads, std::int64_t queries, std::int64_t keys, std::int64_t dim, std::int64_t value_dim,
                     torch::Dtype dtype, std::uint64_t seed) {
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  const auto options = torch::TensorOptions().dtype(dtype);
  // Scores of a few units: the softmax is neither flat nor one-hot.
  return {(torch::randn({heads, queries, dim}, generator) * 1.5).to(options).requires_grad_(),
          (torch::randn({heads, keys, dim}, generator) * 1.5).to(options).requires_grad_(),
          torch::randn({heads, keys, value_dim}, generator).to(options).requires_grad_()};
}

struct Gradients {
  torch::Tensor values, log_sum_exp, d_q, d_k, d_v;
};

Gradients run(const Inputs& in, const torch::Tensor& d_out,
              const std::function<AttentionResult(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>& f) {
  for (const auto* t : {&in.q, &in.k, &in.v})
    if (t->grad().defined()) t->mutable_grad().zero_();
  const auto result = f(in.q, in.k, in.v);
  result.values.backward(d_out);
  return {result.values.detach(), result.log_sum_exp, in.q.grad().clone(), in.k.grad().clone(), in.v.grad().clone()};
}

void check_same(const Gradients& blocked, const Gradients& whole, double tolerance) {
  CHECK(torch::allclose(blocked.values, whole.values, tolerance, tolerance));
  CHECK(torch::allclose(blocked.log_sum_exp, whole.log_sum_exp, tolerance, tolerance));
  CHECK(torch::allclose(blocked.d_q, whole.d_q, tolerance, tolerance));
  CHECK(torch::allclose(blocked.d_k, whole.d_k, tolerance, tolerance));
  CHECK(torch::allclose(blocked.d_v, whole.d_v, tolerance, tolerance));
}

}  // namespace

TEST_CASE("blocked attention gives the whole computation's output, log-sum-exp and gradients", "[mil][attention]") {
  const double scale = 0.37;
  // Blocks that do not divide the sizes: the last block of queries and of keys is short.
  const AttentionBlocks blocks{7, 5};
  for (double dropout : {0.0, 0.3}) {
    INFO("dropout " << dropout);
    const auto in = random_inputs(3, 37, 53, 8, 6, torch::kDouble, 11);
    const auto d_out = torch::randn({3, 37, 6}, torch::kDouble);
    const auto whole = run(in, d_out, [&](auto& q, auto& k, auto& v) { return whole_attention(q, k, v, scale, dropout, 42); });
    const auto blocked =
        run(in, d_out, [&](auto& q, auto& k, auto& v) { return blocked_attention(q, k, v, scale, dropout, 42, blocks); });
    check_same(blocked, whole, 1e-12);  // double precision: the same numbers up to summation order
    if (dropout > 0) {
      const auto undropped =
          run(in, d_out, [&](auto& q, auto& k, auto& v) { return blocked_attention(q, k, v, scale, 0.0, 42, blocks); });
      CHECK_FALSE(torch::allclose(undropped.values, blocked.values, 1e-3, 1e-3));  // dropout did something
    }
  }
  SECTION("float32, one block of keys per query block and many") {
    const auto in = random_inputs(8, 300, 300, 16, 16, torch::kFloat, 12);
    const auto d_out = torch::randn({8, 300, 16});
    const auto whole = run(in, d_out, [&](auto& q, auto& k, auto& v) { return whole_attention(q, k, v, 0.25, 0.1, 7); });
    for (const AttentionBlocks b : {AttentionBlocks{64, 300}, AttentionBlocks{64, 64}}) {
      const auto blocked = run(in, d_out, [&](auto& q, auto& k, auto& v) { return blocked_attention(q, k, v, 0.25, 0.1, 7, b); });
      check_same(blocked, whole, 1e-5);
    }
  }
}

TEST_CASE("a query's attention weights come from its log-sum-exp without the matrix", "[mil][attention]") {
  const auto in = random_inputs(4, 20, 31, 8, 8, torch::kDouble, 13);
  torch::NoGradGuard no_grad;
  const auto result = blocked_attention(in.q, in.k, in.v, 0.5, 0.0, 0, {6, 9});
  const auto expected = torch::softmax(torch::matmul(in.q, in.k.transpose(1, 2)) * 0.5, -1);
  for (std::int64_t query : {0, 19})
    CHECK(torch::allclose(attention_weights_of_query(in.q, in.k, 0.5, result.log_sum_exp, query), expected.select(1, query),
                          1e-12, 1e-12));
}

TEST_CASE("attention dropout: one mask whatever the blocks, the rate asked, kept weights scaled", "[mil][attention]") {
  const double p = 0.25;
  const auto whole = attention_dropout_mask(8, 400, 400, 99, p, 0, 0, torch::kFloat);
  // Any block reproduces its part of the whole mask.
  const auto block = attention_dropout_mask(8, 30, 70, 99, p, 123, 250, torch::kFloat);
  CHECK(torch::equal(block, whole.slice(1, 123, 153).slice(2, 250, 320)));
  // 1.28 M weights: the dropped fraction is p within 5 standard deviations (0.0019).
  const double dropped = (whole == 0).to(torch::kDouble).mean().item<double>();
  CHECK(dropped == Approx(p).margin(5 * std::sqrt(p * (1 - p) / whole.numel())));
  CHECK(torch::allclose(whole.max(), torch::tensor(1.0f / 0.75f)));
  // Heads, rows and seeds get different masks.
  CHECK_FALSE(torch::equal(whole[0], whole[1]));
  CHECK_FALSE(torch::equal(whole[0][0], whole[0][1]));
  CHECK_FALSE(torch::equal(whole, attention_dropout_mask(8, 400, 400, 100, p, 0, 0, torch::kFloat)));
  // Neighbouring keys and queries are not correlated: the fraction of both dropped is p² within 5 sd.
  const auto dropped_here = whole.slice(2, 0, 399) == 0, dropped_next = whole.slice(2, 1, 400) == 0;
  const double both = (dropped_here & dropped_next).to(torch::kDouble).mean().item<double>();
  CHECK(both == Approx(p * p).margin(5 * std::sqrt(p * p * (1 - p * p) / dropped_here.numel())));
  const auto below = whole.slice(1, 1, 400) == 0;
  const double both_rows = ((whole.slice(1, 0, 399) == 0) & below).to(torch::kDouble).mean().item<double>();
  CHECK(both_rows == Approx(p * p).margin(5 * std::sqrt(p * p * (1 - p * p) / below.numel())));
}

TEST_CASE("a layer recomputed in backward gives the gradients of the layer kept, dropout included", "[mil][attention]") {
  torch::Generator init = at::detail::createCPUGenerator(21);
  SelfAttentionLayer layer(32, 8, 32);
  initialise_parameters(*layer, init);
  layer->train();
  const auto x = torch::randn({40, 32}, init);
  const auto d_y = torch::randn({40, 32}, init);
  const auto gradients = [&](bool recompute) {
    layer->zero_grad();
    const auto input = x.clone().requires_grad_();
    torch::Generator generator = at::detail::createCPUGenerator(5);
    const auto y = recompute ? recompute_in_backward([&](const torch::Tensor& in, torch::Generator& g) { return layer->forward(in, 0.3, g); },
                                                     input, layer->parameters(), generator)
                             : layer->forward(input, 0.3, generator);
    y.backward(d_y);
    std::vector<torch::Tensor> out{y.detach(), input.grad().clone()};
    for (const auto& p : layer->parameters()) out.push_back(p.grad().clone());
    out.push_back(torch::rand({4}, generator));  // where the generator stands afterwards
    return out;
  };
  const auto kept = gradients(false), recomputed = gradients(true);
  REQUIRE(kept.size() == recomputed.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    INFO("tensor " << i);
    CHECK(torch::allclose(kept[i], recomputed[i], 1e-6, 1e-6));
  }
}

TEST_CASE("the pseudo-inverse iteration converges to the Moore-Penrose inverse", "[mil][attention]") {
  torch::Generator generator = at::detail::createCPUGenerator(8);
  const auto x = torch::softmax(torch::randn({3, 12, 12}, generator).to(torch::kDouble), -1);
  const auto z = iterative_pseudo_inverse(x, 30);
  CHECK(torch::allclose(torch::matmul(torch::matmul(x, z), x), x, 1e-9, 1e-9));
  CHECK(torch::allclose(z, torch::linalg::pinv(x, 1e-15, false), 1e-6, 1e-6));
}

TEST_CASE("Nystrom attention computes nystrom-attention's formula, forward and gradients", "[mil][attention]") {
  // 50 tokens, 16 landmarks: 14 zero tokens in front, segments of 4.
  torch::Generator generator = at::detail::createCPUGenerator(9);
  NystromAttentionLayer layer(32, 8, 16);
  initialise_parameters(*layer, generator);
  layer->train();  // dropout 0: training mode, gradients
  const auto x = torch::randn({50, 32}, generator).to(torch::kDouble);
  layer->to(torch::kDouble);
  const auto input = x.clone().requires_grad_();
  const auto y = layer->forward(input, 0.0, generator);
  y.sum().backward();
  const auto expected_input_grad = input.grad().clone();

  // The formula as nystrom-attention writes it, on the layer's weights.
  const auto reference_input = x.clone().requires_grad_();
  auto h = torch::cat({torch::zeros({14, 32}, torch::kDouble), layer->norm(reference_input)});
  auto q_k_v = torch::matmul(h, layer->qkv->weight.t()).view({64, 3, 8, 4}).permute({1, 2, 0, 3});
  auto q = q_k_v[0] * 0.5, k = q_k_v[1], v = q_k_v[2];
  auto q_l = q.reshape({8, 16, 4, 4}).sum(2) / 4, k_l = k.reshape({8, 16, 4, 4}).sum(2) / 4;
  auto a1 = torch::softmax(torch::matmul(q, k_l.transpose(1, 2)), -1);
  auto a2 = torch::softmax(torch::matmul(q_l, k_l.transpose(1, 2)), -1);
  auto a3 = torch::softmax(torch::matmul(q_l, k.transpose(1, 2)), -1);
  auto out = torch::matmul(torch::matmul(a1, iterative_pseudo_inverse(a2, 6)), torch::matmul(a3, v));
  out = out + torch::conv2d(v.unsqueeze(0), layer->residual_conv->weight, {}, 1, {16, 0}, 1, 8).squeeze(0);
  out = torch::linear(out.permute({1, 0, 2}).reshape({64, 32}), layer->out->weight, layer->out->bias);
  const auto reference = reference_input + out.slice(0, 14);
  reference.sum().backward();
  CHECK(torch::allclose(y, reference, 1e-10, 1e-10));
  CHECK(torch::allclose(expected_input_grad, reference_input.grad(), 1e-10, 1e-10));
}

// AddressSanitizer keeps up to 256 MiB of freed memory in quarantine and adds its shadow (an eighth): both count
// as resident. Still far below the whole matrix's 2.2 GB.
#ifdef __SANITIZE_ADDRESS__
constexpr std::int64_t kLinearMemoryBound = std::int64_t{640} << 20;
#else
constexpr std::int64_t kLinearMemoryBound = std::int64_t{256} << 20;
#endif

TEST_CASE("attention aggregators train on whole bags in memory linear in the tiles", "[mil][attention][memory]") {
  // 3,000 tiles, 8 heads: the whole attention weights are 72 M values (288 MB) per tensor, and autograd keeps
  // several per layer (scores, weights, dropout mask, dropped weights): over 2 GB for the transformer. Blocks
  // keep O(tiles) instead.
  const std::int64_t tiles = 3000, dim = 64;
  torch::Generator generator = at::detail::createCPUGenerator(4);
  Bag bag;
  bag.id = bag.patient = "P";
  bag.label = 1;
  bag.features = torch::randn({tiles, dim}, generator);
  TrainingOptions options;
  options.model = {dim, 2, 64, 0.1};
  options.max_tiles = 0;  // the whole bag at every step
  options.epochs = 1;
  for (const char* name : {"transformer", "transmil"}) {
    INFO(name);
    options.aggregator = name;
    ResidentMemorySampler memory;
    const auto trained = train_aggregator({&bag}, {}, options, 3);
    const auto prediction = predict_bag(trained, bag, torch::kCPU);
    const std::int64_t growth = memory.peak_bytes() - memory.start_bytes();
    INFO("resident memory grew by " << growth / (1 << 20) << " MiB");
    CHECK(growth < kLinearMemoryBound);
    CHECK(std::isfinite(trained.train_loss.at(0)));
    CHECK(prediction.probabilities.size() == 2);
  }
}
