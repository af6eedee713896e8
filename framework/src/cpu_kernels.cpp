#include "histoflow/cpu_kernels.hpp"

#include <cstdlib>

namespace histoflow {
namespace {

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  return false;  // ATen's AVX-512 kernels exist on x86 only
#endif
}

std::optional<std::string> process_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (!value) return std::nullopt;
  return std::string(value);
}

}  // namespace

std::optional<std::pair<std::string, std::string>> choose_cpu_kernels(
    bool has_avx512, const std::function<std::optional<std::string>(const std::string&)>& get_env) {
  if (!has_avx512 || get_env("HISTOFLOW_CPU_KERNELS") == "default" || get_env("ATEN_CPU_CAPABILITY")) return std::nullopt;
  return std::pair<std::string, std::string>{"ATEN_CPU_CAPABILITY", "avx512"};
}

void use_widest_cpu_kernels() {
  if (const auto setting = choose_cpu_kernels(cpu_has_avx512(), process_env)) setenv(setting->first.c_str(), setting->second.c_str(), 0);
}

}  // namespace histoflow
