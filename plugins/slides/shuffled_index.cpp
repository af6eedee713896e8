#include "shuffled_index.hpp"

#include <stdexcept>

namespace histoflow::slides {
namespace {

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t shuffled_index(std::uint64_t position, std::uint64_t n, std::uint64_t key) {
  if (position >= n) throw std::out_of_range("shuffled_index: position " + std::to_string(position) + " of " + std::to_string(n));
  if (n == 1) return 0;
  int bits = 2;
  while (bits < 64 && (std::uint64_t{1} << bits) < n) ++bits;
  bits += bits % 2;
  const int half = bits / 2;
  const std::uint64_t mask = (std::uint64_t{1} << half) - 1;
  std::uint64_t x = position;
  do {  // the domain is at most 4n: a few rounds of walking at most, on average
    std::uint64_t left = x >> half, right = x & mask;
    for (std::uint64_t round = 0; round < 4; ++round) {
      const std::uint64_t next = left ^ (mix(right ^ mix(key + round)) & mask);
      left = right;
      right = next;
    }
    x = (left << half) | right;
  } while (x >= n);
  return x;
}

}  // namespace histoflow::slides
