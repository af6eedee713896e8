#include "nearest_name.hpp"

#include <algorithm>
#include <cctype>

namespace histoflow::detail {

// Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions
// (nmae -> name is one typo), case-insensitive.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  const auto same = [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  };
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
      if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates) {
  // The fewest typos win; among equally near candidates, one that starts the name (batch in batchsize).
  const auto starts_name = [&](const std::string& candidate) {
    return candidate.size() >= 3 && name.size() > candidate.size() && name.compare(0, candidate.size(), candidate) == 0;
  };
  std::string best;
  std::size_t best_distance = SIZE_MAX;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(name, candidate);
    if (d < best_distance || (d == best_distance && starts_name(candidate) && !starts_name(best))) {
      best_distance = d;
      best = candidate;
    }
  }
  // A suggestion must be plausibly the same word: one typo per three letters (so 'lab' does not become 'rgb').
  const std::size_t allowed = std::max<std::size_t>(1, name.size() / 3);
  if (best_distance <= allowed) return best;
  // Too far for a typo, but a known name with something appended (batch_size for batch) is still likely.
  std::string prefix;
  for (const auto& candidate : candidates)
    if (starts_name(candidate) && candidate.size() > prefix.size()) prefix = candidate;
  return prefix;
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  const std::string best = nearest_name(name, candidates);
  return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

}  // namespace histoflow::detail
