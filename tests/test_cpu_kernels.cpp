#include <catch2/catch.hpp>

#include "histoflow/cpu_kernels.hpp"
#include "support/fake_env.hpp"

using histoflow::choose_cpu_kernels;
using histoflow::testing::env_of;

TEST_CASE("ATen's AVX-512 kernels are chosen when the CPU has them and nobody chose otherwise", "[cpu_kernels]") {
  const auto chosen = choose_cpu_kernels(true, env_of({}));
  REQUIRE(chosen);
  CHECK(chosen->first == "ATEN_CPU_CAPABILITY");
  CHECK(chosen->second == "avx512");
  CHECK_FALSE(choose_cpu_kernels(false, env_of({})));
  CHECK_FALSE(choose_cpu_kernels(true, env_of({{"ATEN_CPU_CAPABILITY", "avx2"}})));
  CHECK_FALSE(choose_cpu_kernels(true, env_of({{"HISTOFLOW_CPU_KERNELS", "default"}})));
}
