#include <catch2/catch.hpp>

#include <map>

#include "histoflow/cpu_kernels.hpp"

using histoflow::choose_cpu_kernels;

namespace {

auto env_of(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    const auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("ATen's AVX-512 kernels are chosen when the CPU has them and nobody chose otherwise", "[cpu_kernels]") {
  const auto chosen = choose_cpu_kernels(true, env_of({}));
  REQUIRE(chosen);
  CHECK(chosen->first == "ATEN_CPU_CAPABILITY");
  CHECK(chosen->second == "avx512");
  CHECK_FALSE(choose_cpu_kernels(false, env_of({})));
  CHECK_FALSE(choose_cpu_kernels(true, env_of({{"ATEN_CPU_CAPABILITY", "avx2"}})));
  CHECK_FALSE(choose_cpu_kernels(true, env_of({{"HISTOFLOW_CPU_KERNELS", "default"}})));
}
