#pragma once
// "Did you mean ...?" suggestions for typos in stage types, parameters and stage ids.
#include <string>
#include <vector>

namespace histoflow::detail {

std::size_t edit_distance(const std::string& a, const std::string& b);
// The closest candidate within a typo-sized distance, or empty.
std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates);
// " (did you mean 'x'?)" or "".
std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace histoflow::detail
