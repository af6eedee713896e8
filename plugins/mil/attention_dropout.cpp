#include "attention_dropout.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>

namespace histoflow::mil {
namespace {

// splitmix64's finaliser: every input bit affects every output bit.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// murmur3's 32-bit finaliser of the key index, keyed by 64 random bits per (head, query) row: for each row a
// bijection of the index. 32-bit arithmetic without branches, which the compiler vectorises.
inline std::uint32_t hash_key(std::uint32_t key, std::uint32_t low, std::uint32_t high) {
  std::uint32_t h = key * 0x9E3779B1u + low;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h ^= high;
  h *= 0xC2B2AE35u;
  return h ^ (h >> 16);
}

// One row of the mask. The inner loop of 16 has a fixed trip count: GCC vectorises it at -O2.
template <typename Scalar>
inline void fill_row(Scalar* out, std::int64_t keys, std::uint32_t first_key, std::uint32_t low, std::uint32_t high,
                     std::uint32_t threshold, Scalar keep) {
  std::int64_t j = 0;
  for (; j + 16 <= keys; j += 16)
    for (std::int64_t u = 0; u < 16; ++u)
      out[j + u] = hash_key(first_key + static_cast<std::uint32_t>(j + u), low, high) >= threshold ? keep : Scalar(0);
  for (; j < keys; ++j)
    out[j] = hash_key(first_key + static_cast<std::uint32_t>(j), low, high) >= threshold ? keep : Scalar(0);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// The portable build targets SSE2, which has no 32-bit vector multiply: AVX2's makes the mask about 4 times
// faster (attention dropout on a 50,000-tile bag hashes 2·10^10 weights per layer and pass).
template <typename Scalar>
__attribute__((target("avx2"))) void fill_row_avx2(Scalar* out, std::int64_t keys, std::uint32_t first_key,
                                                   std::uint32_t low, std::uint32_t high, std::uint32_t threshold,
                                                   Scalar keep) {
  fill_row(out, keys, first_key, low, high, threshold, keep);
}
bool has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();  // may run before the library's constructors have
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}
#endif

template <typename Scalar>
void fill(Scalar* mask, std::int64_t heads, std::int64_t queries, std::int64_t keys, std::uint64_t seed,
          std::int64_t first_query, std::int64_t first_key, double p) {
  // Dropped when the hash falls below p · 2^32.
  const auto threshold = static_cast<std::uint32_t>(std::min(std::ldexp(p, 32), 4294967295.0));
  const auto keep = static_cast<Scalar>(1.0 / (1.0 - p));
  at::parallel_for(0, heads * queries, 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t row = begin; row < end; ++row) {
      const auto head = static_cast<std::uint64_t>(row / queries);
      const auto query = static_cast<std::uint64_t>(first_query + row % queries);
      const std::uint64_t row_key = mix64(seed ^ mix64((head << 40) ^ query ^ 0x9E3779B97F4A7C15ULL));
      const auto low = static_cast<std::uint32_t>(row_key), high = static_cast<std::uint32_t>(row_key >> 32);
      Scalar* out = mask + row * keys;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
      if (has_avx2()) {
        fill_row_avx2(out, keys, static_cast<std::uint32_t>(first_key), low, high, threshold, keep);
        continue;
      }
#endif
      fill_row(out, keys, static_cast<std::uint32_t>(first_key), low, high, threshold, keep);
    }
  });
}

}  // namespace

std::uint64_t draw_attention_seed(torch::Generator& generator) {
  auto* cpu = at::check_generator<at::CPUGeneratorImpl>(generator);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return cpu->random64();
}

torch::Tensor attention_dropout_mask(std::int64_t heads, std::int64_t queries, std::int64_t keys, std::uint64_t seed,
                                     double p, std::int64_t first_query, std::int64_t first_key,
                                     const torch::TensorOptions& options) {
  if (!(p >= 0 && p < 1)) throw std::invalid_argument("attention dropout must be in [0, 1), got " + std::to_string(p));
  auto mask = torch::empty({heads, queries, keys}, options.device(torch::kCPU));
  AT_DISPATCH_FLOATING_TYPES(mask.scalar_type(), "attention_dropout_mask", [&] {
    fill(mask.data_ptr<scalar_t>(), heads, queries, keys, seed, first_query, first_key, p);
  });
  return mask.to(options.device());
}

}  // namespace histoflow::mil
