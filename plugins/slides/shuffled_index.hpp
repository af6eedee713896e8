#pragma once
// A seeded permutation of [0, n) evaluated one position at a time, in O(1) memory: a 4-round Feistel network
// on the smallest even number of bits covering n, with cycle walking back into range. A stream of shuffled
// epochs over millions of tiles needs no list of them.
#include <cstdint>

namespace histoflow::slides {

// The element at `position` (< n) of the permutation `key` selects. A bijection on [0, n) for every key.
std::uint64_t shuffled_index(std::uint64_t position, std::uint64_t n, std::uint64_t key);

}  // namespace histoflow::slides
