// Data-parallel pieces without a model: the rendezvous from the environment, each process's share of a batch, and
// a real two-member Gloo group (two threads of this process) summing tensors, averaging gradients and running
// Sinkhorn-Knopp over rows split between them.
#include <catch2/catch.hpp>
#include <thread>

#include "collectives.hpp"
#include "data_parallel.hpp"
#include "ssl_losses.hpp"
#include "support/fake_env.hpp"
#include "support/fresh_folder.hpp"

using namespace histoflow::finetune;
using histoflow::testing::env_of;
using histoflow::testing::fresh_folder;

namespace {

// Runs `work(collectives)` on two members of one Gloo group, in two threads; returns what each returned.
template <typename Work>
auto on_two_members(const std::string& name, Work work) {
  const std::string store = "file:" + (fresh_folder(name) / "rendezvous").string();
  decltype(work(std::declval<Collectives&>())) results[2];
  std::thread other([&] {
    auto group = join_process_group({1, 2, store});
    results[1] = work(*group);
  });
  auto group = join_process_group({0, 2, store});
  results[0] = work(*group);
  other.join();
  return std::pair{results[0], results[1]};
}

}  // namespace

TEST_CASE("a run's ranks come from srun's variables, or histoflow's, with the store", "[finetune][data_parallel]") {
  CHECK_FALSE(rendezvous_from(env_of({}), "file:/x").has_value());
  CHECK_FALSE(rendezvous_from(env_of({{"SLURM_PROCID", "0"}, {"SLURM_STEP_NUM_TASKS", "1"}}), "file:/x").has_value());  // one process
  // A batch script of a 4-task job is one process: no step, so no rendezvous.
  CHECK_FALSE(rendezvous_from(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_JOB_ID", "7"}}), "file:/x").has_value());
  const auto step = env_of({{"SLURM_PROCID", "3"}, {"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_JOB_ID", "7"}, {"SLURM_STEP_ID", "2"}});
  CHECK(slurm_rendezvous_store(step, "/shared/out") == "file:/shared/out/rendezvous-7.2");
  CHECK(slurm_rendezvous_store(env_of({}), "/shared/out").empty());
  auto r = rendezvous_from(step, slurm_rendezvous_store(step, "/shared/out"));
  REQUIRE(r);
  CHECK(r->rank == 3);
  CHECK(r->world == 4);
  CHECK(r->store == "file:/shared/out/rendezvous-7.2");
  r = rendezvous_from(env_of({{"HISTOFLOW_RANK", "1"}, {"HISTOFLOW_WORLD_SIZE", "2"}, {"HISTOFLOW_RENDEZVOUS", "tcp:node1:29500"}}), "file:/x");
  REQUIRE(r);
  CHECK(r->store == "tcp:node1:29500");
  // Set explicitly, histoflow's variables win over those of the srun step around the process.
  r = rendezvous_from(env_of({{"HISTOFLOW_RANK", "1"}, {"HISTOFLOW_WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_STEP_NUM_TASKS", "1"}}), "file:/x");
  REQUIRE(r);
  CHECK(r->rank == 1);
  CHECK(r->world == 2);
  CHECK_THROWS_WITH(rendezvous_from(env_of({{"HISTOFLOW_RANK", "2"}, {"HISTOFLOW_WORLD_SIZE", "2"}}), "file:/x"),
                    Catch::Contains("HISTOFLOW_RANK=2 is not a rank of HISTOFLOW_WORLD_SIZE=2"));
  CHECK_THROWS_WITH(rendezvous_from(env_of({{"HISTOFLOW_RANK", "1"}}), "file:/x"), Catch::Contains("go together"));
  CHECK_THROWS_WITH(rendezvous_from(env_of({{"HISTOFLOW_RANK", "0"}, {"HISTOFLOW_WORLD_SIZE", "2"}}), ""),
                    Catch::Contains("HISTOFLOW_RENDEZVOUS must name where the processes meet"));
  CHECK_THROWS_WITH(rendezvous_from(env_of({{"SLURM_PROCID", "x"}, {"SLURM_STEP_NUM_TASKS", "2"}}), "file:/x"), Catch::Contains("not a whole number"));
}

TEST_CASE("each process takes its images from every crop block, with their masks", "[finetune][data_parallel]") {
  SslBatch global;
  const std::int64_t images = 4;
  global.global_crops = torch::arange(2 * images).to(torch::kFloat).view({2 * images, 1, 1, 1});  // row = crop * 4 + image
  global.local_crops = torch::arange(3 * images).to(torch::kFloat).view({3 * images, 1, 1, 1});
  auto masks = torch::zeros({2 * images, 4}, torch::kBool);
  masks[1][2] = true;  // crop 0 of image 1
  masks[6][0] = masks[6][1] = true;  // crop 1 of image 2
  global.masks = crop_masks(masks);
  const SslBatch second = rank_share(global, 1, 2);  // images 2 and 3
  CHECK(second.global_crops.flatten().equal(torch::tensor({2.f, 3.f, 6.f, 7.f})));
  CHECK(second.local_crops.flatten().equal(torch::tensor({2.f, 3.f, 6.f, 7.f, 10.f, 11.f})));
  CHECK(second.masks.masked == 2);
  CHECK(second.masks.indices.equal(torch::tensor({8, 9}, torch::kLong)));  // row 2 of the share (crop 1, image 2)
  CHECK(second.masks.weights.equal(torch::tensor({0.5f, 0.5f})));
  CHECK(rank_share(global, 0, 2).masks.masked == 1);
  CHECK_THROWS_WITH(rank_share(global, 0, 3), Catch::Contains("does not divide among 3 processes"));
}

TEST_CASE("a Gloo group of two sums, averages gradients, and runs Sinkhorn-Knopp as one process over all rows", "[finetune][data_parallel]") {
  const auto [a, b] = on_two_members("gloo-sum", [](Collectives& group) {
    auto x = torch::tensor({1.0f, 2.0f}) * static_cast<float>(group.rank() + 1);
    group.sum(x);
    return x;
  });
  CHECK(a.equal(torch::tensor({3.0f, 6.0f})));
  CHECK(b.equal(a));

  const auto [ga, gb] = on_two_members("gloo-grads", [](Collectives& group) {
    auto p = torch::zeros({3}, torch::requires_grad());
    (p * torch::tensor({1.0f, 2.0f, 3.0f}) * static_cast<float>(group.rank() == 0 ? 1 : 3)).sum().backward();
    average_gradients({p}, group);
    return p.grad().clone();
  });
  CHECK(ga.equal(torch::tensor({2.0f, 4.0f, 6.0f})));
  CHECK(gb.equal(ga));

  torch::manual_seed(3);
  const auto logits = torch::randn({10, 7});
  const auto whole = sinkhorn_knopp(logits, 0.07, 3, 10);
  const auto [top, bottom] = on_two_members("gloo-sinkhorn", [&](Collectives& group) {
    const auto rows = logits.slice(0, group.rank() * 6, group.rank() == 0 ? 6 : 10);  // unequal shares: 6 and 4 rows
    return sinkhorn_knopp(rows, 0.07, 3, 10, [&](torch::Tensor& x) { group.sum(x); });
  });
  CHECK(torch::allclose(torch::cat({top, bottom}), whole, 1e-5, 1e-7));
  CHECK_FALSE(torch::allclose(sinkhorn_knopp(logits.slice(0, 0, 6), 0.07, 3, 10), whole.slice(0, 0, 6), 1e-3, 1e-5));  // needs the sum
}
