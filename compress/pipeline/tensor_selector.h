// Choosing tensors by name: the `targets` / `ignore` patterns of every [[pass]].
//
// A pattern is either a glob over the dot-separated canonical name or a regular expression:
//   "blocks.*.att.key.weight"   '*' matches any run of characters inside one segment
//                               (it never crosses a '.'), so this is every layer's att.key
//   "**.lr_a"                   '**' as a whole segment matches zero or more segments
//   "re:blocks\.(0|1)\..*"      "re:" then an ECMAScript regular expression that must match
//                               the whole name (not a prefix: a pattern means what it shows)
// Globs allow only the characters of canonical names (letters, digits, '_', '-') plus '*';
// anything else ('?', '[', '{', ...) is rejected with a hint to use "re:", because a user who
// writes them almost certainly expects regex or shell semantics that a glob here lacks.
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <vector>

namespace rwkvlite {

// Bounds on "re:" patterns (std::regex recurses per term and per group; see compile()).
constexpr size_t kRegexMaxLength = 1024;
constexpr int kRegexMaxGroupDepth = 16;
// std::regex reads numbers (back-references, repetition counts) into a long without an overflow
// check, and expands a counted repetition into that many copies of its term.
constexpr size_t kRegexMaxDigits = 6;
constexpr int64_t kRegexMaxRepetitionProduct = 10000;

class TensorPattern {
 public:
  // Throws UsageError("invalid pattern '...': <reason>") for a malformed glob or regex.
  static TensorPattern compile(const std::string& text);

  bool matches(const std::string& name) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  bool is_regex_ = false;
  std::vector<std::string> segments_;  // glob, split at '.'
  std::shared_ptr<const std::regex> regex_;
};

// A name is selected when it matches any target and no ignore pattern.
class TensorSelector {
 public:
  TensorSelector() = default;
  // Throws UsageError for a malformed pattern (see TensorPattern::compile).
  TensorSelector(const std::vector<std::string>& targets, const std::vector<std::string>& ignore);

  bool matches(const std::string& name) const;
  // The selected names, in the order given.
  std::vector<std::string> select(const std::vector<std::string>& names) const;
  // Target patterns that match none of `names` (for "did this pattern do anything" messages).
  std::vector<std::string> unmatched_targets(const std::vector<std::string>& names) const;

  std::vector<std::string> target_texts() const;
  std::vector<std::string> ignore_texts() const;

 private:
  std::vector<TensorPattern> targets_;
  std::vector<TensorPattern> ignore_;
};

}  // namespace rwkvlite
