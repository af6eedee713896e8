#include "histoflow/malloc_thresholds.hpp"

#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace histoflow {

std::optional<std::size_t> choose_mmap_threshold(const std::function<std::optional<std::string>(const std::string&)>& get_env) {
  if (get_env("HISTOFLOW_MALLOC_THRESHOLDS") == "dynamic" || get_env("MALLOC_MMAP_THRESHOLD_") || get_env("MALLOC_TRIM_THRESHOLD_"))
    return std::nullopt;
  if (const auto tunables = get_env("GLIBC_TUNABLES"); tunables && tunables->find("glibc.malloc.") != std::string::npos)
    return std::nullopt;
  return std::size_t{1} << 20;
}

void hold_malloc_thresholds() {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
  const auto threshold = choose_mmap_threshold([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  });
  // Setting either threshold ends glibc's adjustment of both; the trim threshold stays at its default (128 KiB).
  if (threshold) mallopt(M_MMAP_THRESHOLD, static_cast<int>(*threshold));
#endif
}

}  // namespace histoflow
