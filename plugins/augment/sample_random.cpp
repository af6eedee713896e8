#include "sample_random.hpp"

namespace histoflow::augment {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

SampleRandom::SampleRandom(std::uint64_t seed, std::uint64_t sample, std::uint64_t stream) {
  // Each input is mixed in turn, so nearby (seed, sample, stream) triples give unrelated states.
  std::uint64_t x = seed;
  x = splitmix64(x) ^ sample;
  x = splitmix64(x) ^ stream;
  for (auto& s : state_) s = splitmix64(x);
}

std::uint64_t SampleRandom::next() {
  const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const std::uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double SampleRandom::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::int64_t SampleRandom::below(std::int64_t n) {
  return static_cast<std::int64_t>(uniform() * static_cast<double>(n));  // n is small (pixels): bias < 2^-40
}

}  // namespace histoflow::augment
