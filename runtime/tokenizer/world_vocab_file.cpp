// Reader of the World vocabulary file format: one "ID TOKEN LENGTH" line per token, TOKEN a
// Python str literal ('...' or "...", meaning its UTF-8 bytes) or bytes literal (b'...').
//
// The file is the only definition of the tokenizer, so it is read strictly: a literal Python
// would reject, a length that disagrees with the decoded bytes, or a duplicate id or token is
// an error naming the line, rather than a silently different tokenization.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/tokenizer/tokenizer.h"

namespace rwkvlite {
namespace {

// The vendored file is about 1 MB; anything far larger is not a vocabulary.
constexpr uint64_t kMaxVocabFileBytes = 64ull << 20;
// Highest id accepted. Bounds the id table a small corrupt file could make us allocate, while
// leaving room for vocabularies well beyond World's 65,536.
constexpr int64_t kMaxTokenId = (1 << 20) - 1;

// A line problem; read_world_vocab adds the file name, line number and the line itself.
struct LineError {
  std::string message;
};

// The line made printable on one line of a message: non-printable bytes become \xHH and long
// lines are cut, so the error stays one readable line whatever the file holds.
std::string quote_line(std::string_view line) {
  constexpr size_t kMaxShown = 80;
  std::string out;
  for (size_t i = 0; i < line.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (line.size() > kMaxShown) out += "...";
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the well-formed UTF-8 sequence starting at s[pos], or 0 if it is malformed
// (truncated, overlong, a surrogate or beyond U+10FFFF), as Python's strict UTF-8 decoder judges.
size_t utf8_sequence_length(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(pos);
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2, cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3, cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (pos + len > s.size()) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((byte(pos + i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(pos + i) & 0x3f);
  }
  const uint32_t min_cp = len == 3 ? 0x800 : 0x10000;
  if (len > 2 && cp < min_cp) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;
  if (cp > 0x10ffff) return 0;
  return len;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Bytes a Python str or bytes literal stands for (a str literal means its UTF-8 encoding).
// Accepts exactly the escapes Python defines for the literal's kind except \N{name}, which
// needs the Unicode name table and no vocabulary uses. Python keeps an unknown escape such as
// \q (or \u in a bytes literal) as a backslash plus the letter, with a deprecation warning; a
// generated vocabulary would spell that \\q, so here it is an error rather than a guess.
std::string decode_python_literal(std::string_view lit) {
  size_t start = 0;
  const bool is_bytes = !lit.empty() && lit[0] == 'b';
  if (is_bytes) start = 1;
  if (lit.size() < start + 2 || (lit[start] != '\'' && lit[start] != '"')) {
    throw LineError{"the token is not a quoted Python literal ('...', \"...\" or b'...')"};
  }
  const char quote = lit[start];
  if (lit.back() != quote) throw LineError{"the token literal does not end with its opening quote"};
  const std::string_view body = lit.substr(start + 1, lit.size() - start - 2);
  const char* kind = is_bytes ? "bytes literal" : "str literal";

  std::string out;
  size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (c == quote) throw LineError{"unescaped quote inside the token literal"};
    if (c != '\\') {
      if (is_bytes) {
        if (static_cast<unsigned char>(c) >= 0x80) throw LineError{"non-ASCII character in a bytes literal"};
        out += c;
        ++i;
      } else {
        const size_t len = utf8_sequence_length(body, i);
        if (len == 0) throw LineError{"invalid UTF-8 in a str literal"};
        out.append(body.substr(i, len));
        i += len;
      }
      continue;
    }
    if (i + 1 >= body.size()) throw LineError{"the token literal ends inside an escape (its closing quote is escaped)"};
    const char e = body[i + 1];
    i += 2;
    switch (e) {
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        if (e != 'x' && is_bytes) throw LineError{std::string("\\") + e + " escape in a bytes literal"};
        const size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t value = 0;
        for (size_t k = 0; k < digits; ++k) {
          const int h = i + k < body.size() ? hex_value(body[i + k]) : -1;
          if (h < 0) throw LineError{std::string("\\") + e + " escape needs " + std::to_string(digits) + " hex digits"};
          value = value * 16 + static_cast<uint32_t>(h);
        }
        i += digits;
        if (is_bytes) {
          out += static_cast<char>(value);  // \xHH in a bytes literal is that byte
        } else {
          // In a str literal every escape is a code point, encoded as UTF-8 (\xe9 is 2 bytes).
          if (value > 0x10ffff) throw LineError{"escape beyond U+10FFFF in a str literal"};
          if (value >= 0xd800 && value <= 0xdfff) {
            throw LineError{"surrogate code point in a str literal (not encodable as UTF-8)"};
          }
          append_utf8(value, out);
        }
        break;
      }
      case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        // Octal: up to three digits, the first already consumed.
        uint32_t value = static_cast<uint32_t>(e - '0');
        for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k, ++i) {
          value = value * 8 + static_cast<uint32_t>(body[i] - '0');
        }
        if (is_bytes) {
          if (value > 0xff) throw LineError{"octal escape above \\377 in a bytes literal"};
          out += static_cast<char>(value);
        } else {
          append_utf8(value, out);
        }
        break;
      }
      case 'N':
        throw LineError{std::string("\\N{...} named escapes are not supported in a ") + kind};
      default:
        throw LineError{std::string("unknown escape \\") + quote_line(std::string_view(&e, 1)) + " in a " + kind};
    }
  }
  return out;
}

// A non-negative decimal field; `what` names it in the error.
int64_t parse_decimal(std::string_view field, const char* what) {
  if (field.empty()) throw LineError{std::string("the ") + what + " field is empty"};
  if (field.size() > 9) throw LineError{std::string("the ") + what + " field '" + quote_line(field) + "' is too large"};
  int64_t v = 0;
  for (char c : field) {
    if (c < '0' || c > '9') {
      throw LineError{std::string("the ") + what + " field '" + quote_line(field) + "' is not a decimal number"};
    }
    v = v * 10 + (c - '0');
  }
  return v;
}

struct VocabLine {
  int64_t id;
  std::string bytes;
};

// One "ID TOKEN LENGTH" line. TOKEN may itself hold spaces, so ID ends at the first space and
// LENGTH starts after the last.
VocabLine parse_line(std::string_view line) {
  const size_t first_space = line.find(' ');
  const size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || last_space == first_space) {
    throw LineError{"expected 'ID TOKEN LENGTH'"};
  }
  VocabLine v;
  v.id = parse_decimal(line.substr(0, first_space), "id");
  const int64_t length = parse_decimal(line.substr(last_space + 1), "length");
  v.bytes = decode_python_literal(line.substr(first_space + 1, last_space - first_space - 1));
  if (v.id < 1 || v.id > kMaxTokenId) {
    throw LineError{"id " + std::to_string(v.id) + " is out of range: token ids run from 1 to " +
                    std::to_string(kMaxTokenId) + " (0 is end-of-text)"};
  }
  if (static_cast<int64_t>(v.bytes.size()) != length) {
    throw LineError{"the length field says " + std::to_string(length) + " bytes but the token has " +
                    std::to_string(v.bytes.size())};
  }
  if (v.bytes.empty()) throw LineError{"empty token"};
  return v;
}

}  // namespace

std::vector<std::string> read_world_vocab(const std::string& vocab_path) {
  std::vector<uint8_t> data;
  try {
    data = read_file_bytes(vocab_path, kMaxVocabFileBytes);
  } catch (const InputError& e) {
    throw InputError(std::string("World vocabulary: ") + e.what());  // say which file this was meant to be
  }
  const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  const std::string where = "World vocabulary '" + vocab_path + "'";

  std::vector<std::string> tokens(1);  // id 0, end-of-text, has no bytes
  std::vector<size_t> line_of_id(1, 0);
  std::unordered_map<std::string, size_t> line_of_token;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();  // the last line may lack its newline
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    // Tolerate CRLF endings (a checkout converted on Windows); a token's own \r is escaped.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    try {
      if (line.empty()) throw LineError{"empty line"};
      VocabLine v = parse_line(line);
      const auto id = static_cast<size_t>(v.id);
      if (id >= tokens.size()) {
        tokens.resize(id + 1);
        line_of_id.resize(id + 1, 0);
      }
      if (line_of_id[id] != 0) {
        throw LineError{"id " + std::to_string(id) + " is already defined on line " + std::to_string(line_of_id[id])};
      }
      // Two ids with the same bytes would make greedy encoding ambiguous.
      const auto [it, inserted] = line_of_token.emplace(v.bytes, line_no);
      if (!inserted) throw LineError{"the same token is already defined on line " + std::to_string(it->second)};
      line_of_id[id] = line_no;
      tokens[id] = std::move(v.bytes);
    } catch (const LineError& e) {
      throw InputError(where + " line " + std::to_string(line_no) + ": " + e.message +
                       (line.empty() ? "" : ": " + quote_line(line)));
    }
  }
  if (line_of_token.empty()) throw InputError(where + " holds no tokens");

  // Greedy encoding can always fall back to one byte only if every byte is a token; without
  // that, some inputs could not be encoded at all.
  for (int b = 0; b < 256; ++b) {
    if (line_of_token.count(std::string(1, static_cast<char>(b))) == 0) {
      static const char* hex = "0123456789abcdef";
      throw InputError(where + " has no token for the single byte 0x" + hex[b >> 4] + hex[b & 15] +
                       ", so some text could not be encoded; a World vocabulary must hold all 256 bytes");
    }
  }
  return tokens;
}

}  // namespace rwkvlite
