// "Did you mean" suggestions for config messages: an edit distance, the closest candidate
// within a typo's distance, and the message suffix built from it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rwkvlite {

// Optimal string alignment distance (insertions, deletions, substitutions, adjacent
// transpositions each cost 1), and the closest candidate within a small distance (empty if
// none).
size_t edit_distance(std::string_view a, std::string_view b);
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// "; did you mean 'x'?" for the closest candidate, or "" when none is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& v, const char* sep);

}  // namespace rwkvlite
