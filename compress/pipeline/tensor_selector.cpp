#include "compress/pipeline/tensor_selector.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "runtime/core/error.h"

namespace rwkvlite {

namespace {

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

bool is_glob_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '*';
}

[[noreturn]] void invalid(const std::string& text, const std::string& reason) {
  throw UsageError("invalid pattern '" + text + "': " + reason);
}

// '*' within one segment: the classic wildcard match with one backtrack point (the last '*'),
// linear in practice and never exponential.
bool segment_matches(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] != '*' && pattern[p] == text[t]) {
      ++p, ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_t = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Segment lists with '**' (zero or more segments), by dynamic programming over
// (pattern segment, name segment) so that several '**' stay polynomial.
bool segments_match(const std::vector<std::string>& pattern, const std::vector<std::string>& name) {
  const size_t P = pattern.size(), N = name.size();
  // ok[i][j]: pattern[i..] matches name[j..]
  std::vector<std::vector<char>> ok(P + 1, std::vector<char>(N + 1, 0));
  ok[P][N] = 1;
  for (size_t i = P; i-- > 0;) {
    for (size_t j = N + 1; j-- > 0;) {
      if (pattern[i] == "**") {
        ok[i][j] = ok[i + 1][j] || (j < N && ok[i][j + 1]);
      } else {
        ok[i][j] = j < N && segment_matches(pattern[i], name[j]) && ok[i + 1][j + 1];
      }
    }
  }
  return ok[0][0];
}

// std::regex compiles and matches by recursion (one level per term and per group), so a long or
// deeply grouped expression overflows the stack; both are bounded before it sees the text. It
// also reads numbers without an overflow check (a signed overflow: undefined behaviour) and
// copies a term once per count of a repetition ("(a{999}){999}" is a million states), so digit
// runs are short and the counts' product is bounded (as if every repetition were nested).
void check_regex_limits(const std::string& text, const std::string& expr) {
  const std::string shown = text.size() > 60 ? text.substr(0, 60) + "..." : text;
  if (expr.size() > kRegexMaxLength) {
    invalid(shown, std::to_string(expr.size()) + " characters exceed the limit of " + std::to_string(kRegexMaxLength) +
                       " for a regular expression");
  }
  size_t digits = 0;
  for (char c : expr) {
    digits = (c >= '0' && c <= '9') ? digits + 1 : 0;
    if (digits > kRegexMaxDigits) {
      invalid(shown, "a number of more than " + std::to_string(kRegexMaxDigits) +
                         " digits exceeds the limit for a regular expression");
    }
  }
  int depth = 0;
  bool in_class = false;
  int64_t repetitions = 1;
  for (size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    if (c == '\\') {
      ++i;
    } else if (!in_class && c == '{') {
      // {n}, {n,} or {n,m}: the largest count given (digit runs are short, so no overflow).
      int64_t count = 0, largest = 0;
      for (size_t j = i + 1; j < expr.size() && expr[j] != '}'; ++j) {
        if (expr[j] >= '0' && expr[j] <= '9') {
          count = count * 10 + (expr[j] - '0');
          largest = std::max(largest, count);
        } else {
          count = 0;
        }
      }
      repetitions *= std::max<int64_t>(1, largest);
      if (repetitions > kRegexMaxRepetitionProduct) {
        invalid(shown, "repetition counts whose product exceeds " + std::to_string(kRegexMaxRepetitionProduct) +
                           " exceed the limit for a regular expression");
      }
    } else if (in_class) {
      in_class = c != ']';
    } else if (c == '[') {
      in_class = true;
    } else if (c == '(' && ++depth > kRegexMaxGroupDepth) {
      invalid(shown, "groups nested more than " + std::to_string(kRegexMaxGroupDepth) + " deep exceed the limit");
    } else if (c == ')' && depth > 0) {
      --depth;
    }
  }
}

}  // namespace

TensorPattern TensorPattern::compile(const std::string& text) {
  TensorPattern p;
  p.text_ = text;
  if (text.rfind("re:", 0) == 0) {
    const std::string expr = text.substr(3);
    if (expr.empty()) invalid(text, "empty regular expression after 're:'");
    check_regex_limits(text, expr);
    try {
      p.regex_ = std::make_shared<const std::regex>(expr, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      invalid(text, std::string("not a valid regular expression (") + e.what() + ")");
    }
    p.is_regex_ = true;
    return p;
  }
  if (text.empty()) invalid(text, "empty pattern");
  for (char c : text) {
    if (c == '.') continue;
    if (!is_glob_char(c)) {
      invalid(text, std::string("character '") + c +
                        "' is not allowed in a glob (globs know only '*' and '**'); "
                        "write \"re:...\" for a regular expression");
    }
  }
  p.segments_ = split_dots(text);
  for (const std::string& seg : p.segments_) {
    if (seg.empty()) invalid(text, "empty segment (leading, trailing or doubled '.')");
    if (seg.find("**") != std::string::npos && seg != "**") {
      invalid(text, "'**' must be a whole segment, as in \"**.lr_a\"; use '*' inside a segment");
    }
  }
  return p;
}

bool TensorPattern::matches(const std::string& name) const {
  if (is_regex_) return std::regex_match(name, *regex_);
  return segments_match(segments_, split_dots(name));
}

TensorSelector::TensorSelector(const std::vector<std::string>& targets, const std::vector<std::string>& ignore) {
  for (const auto& t : targets) targets_.push_back(TensorPattern::compile(t));
  for (const auto& t : ignore) ignore_.push_back(TensorPattern::compile(t));
}

bool TensorSelector::matches(const std::string& name) const {
  bool targeted = false;
  for (const auto& p : targets_) {
    if (p.matches(name)) {
      targeted = true;
      break;
    }
  }
  if (!targeted) return false;
  for (const auto& p : ignore_) {
    if (p.matches(name)) return false;
  }
  return true;
}

std::vector<std::string> TensorSelector::select(const std::vector<std::string>& names) const {
  std::vector<std::string> out;
  for (const auto& n : names) {
    if (matches(n)) out.push_back(n);
  }
  return out;
}

std::vector<std::string> TensorSelector::unmatched_targets(const std::vector<std::string>& names) const {
  std::vector<std::string> out;
  for (const auto& p : targets_) {
    bool any = false;
    for (const auto& n : names) {
      if (p.matches(n)) {
        any = true;
        break;
      }
    }
    if (!any) out.push_back(p.text());
  }
  return out;
}

std::vector<std::string> TensorSelector::target_texts() const {
  std::vector<std::string> out;
  for (const auto& p : targets_) out.push_back(p.text());
  return out;
}

std::vector<std::string> TensorSelector::ignore_texts() const {
  std::vector<std::string> out;
  for (const auto& p : ignore_) out.push_back(p.text());
  return out;
}

}  // namespace rwkvlite
