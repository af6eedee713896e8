#pragma once
// Random numbers for one sample's augmentation, a pure function of (seed, sample index, stream): every crop of
// every sample gets the same parameters whichever thread computes it and in whatever order, so a run is
// reproducible at any thread count and a resumed run draws what an uninterrupted one would have.
#include <cstdint>

namespace histoflow::augment {

class SampleRandom {
 public:
  SampleRandom(std::uint64_t seed, std::uint64_t sample, std::uint64_t stream);
  std::uint64_t next();                 // xoshiro256**
  double uniform();                     // [0, 1), 53 bits
  double uniform(double low, double high) { return low + uniform() * (high - low); }
  bool chance(double probability) { return uniform() < probability; }
  std::int64_t below(std::int64_t n);   // [0, n), n > 0

 private:
  std::uint64_t state_[4];
};

}  // namespace histoflow::augment
