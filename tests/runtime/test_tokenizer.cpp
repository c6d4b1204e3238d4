// Tokenizers: the World vocabulary file reader, greedy encoding against independently derived
// ids, round trips over any bytes, the byte tokenizer, and choosing a tokenizer for a model.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "tests/support/test_support.h"
#include "runtime/tokenizer/tokenizer.h"

using namespace rwkvlite;

namespace {

std::string world_vocab_path() { return test::vendored_dir() + "/rwkv-world-vocab/rwkv_vocab_v20230424.txt"; }

const Tokenizer& world() {
  static const std::unique_ptr<Tokenizer> tok = load_world_tokenizer(world_vocab_path());
  return *tok;
}

std::string read_text(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string s(max_bytes, '\0');
  in.read(s.data(), static_cast<std::streamsize>(max_bytes));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

std::string write_scratch(const std::string& name, const std::string& contents) {
  const std::string path = test::scratch_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// A valid small World-format vocabulary: ids 1..256 are the single bytes (as bytes literals),
// followed by `extra` lines, which tests use to add tokens or break a line.
std::string small_vocab(const std::string& extra) {
  std::string s;
  static const char* hex = "0123456789abcdef";
  for (int b = 0; b < 256; ++b) {
    s += std::to_string(b + 1) + " b'\\x" + hex[b >> 4] + hex[b & 15] + "' 1\n";
  }
  return s + extra;
}

// Sets an environment variable for one scope, restoring the previous value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) ::setenv(name, value, 1); else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) ::setenv(name_, old_.c_str(), 1); else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// Runs `f`, which must throw E with a message containing `needle`.
template <typename E, typename F>
void require_error_containing(F&& f, const std::string& needle) {
  try {
    f();
    FAIL("expected an error mentioning: " << needle);
  } catch (const E& e) {
    INFO("message: " << e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
    CHECK(std::string(e.what()).find('\n') == std::string::npos);  // one line
  }
}

}  // namespace

TEST_CASE("World vocabulary file: 65,529 tokens with the bytes and lengths the file states") {
  const std::vector<std::string> tokens = read_world_vocab(world_vocab_path());
  // The file assigns ids 1..65529 (not 65535: ids 65530..65535 of a World model's head are unused).
  REQUIRE(tokens.size() == 65530);
  CHECK(tokens[0].empty());  // end-of-text
  size_t entries = 0, total_bytes = 0, single_bytes = 0;
  for (const std::string& t : tokens) {
    entries += !t.empty();
    total_bytes += t.size();
    single_bytes += t.size() == 1;
  }
  CHECK(entries == 65529);
  CHECK(total_bytes == 373358);  // sum of the file's LENGTH column
  CHECK(single_bytes == 256);
  // One of each literal form, checked against Python's ast.literal_eval of the same line.
  CHECK(tokens[1] == std::string(1, '\0'));               // '\x00'
  CHECK(tokens[11] == "\n");                              // '\n'
  CHECK(tokens[40] == "'");                               // "'"  (double-quoted str)
  CHECK(tokens[93] == "\\");                              // '\\'
  CHECK(tokens[129] == "\x80");                           // b'\x80' (bytes: one byte)
  CHECK(tokens[257] == "\t\t");                           // '\t\t'
  CHECK(tokens[379] == "\"'");                            // '"\''
  CHECK(tokens[2412] == "\x82\xac");                      // b'\x82\xac'
  CHECK(tokens[2423] == "\xc2\x80");                      // '\x80' (str: U+0080, 2 UTF-8 bytes)
  CHECK(tokens[9804] == "\xe2\x80\x82");                  // '\u2002'
  CHECK(tokens[33000] == "Clean");
  CHECK(tokens[65208] == " \xd0\xba\xd0\xbe\xd1\x82\xd0\xbe\xd1\x80\xd0\xbe\xd0\xb9");  // ' которой'
  CHECK(tokens[65529] == std::string(128, ' '));          // the longest token
}

TEST_CASE("World tokenizer encodes sentences to the reference ids") {
  // Expected ids derived independently: a Python script parsed the vendored vocabulary with
  // ast.literal_eval and encoded each sentence's UTF-8 bytes greedily (at each position, the
  // longest token found by dict lookup over lengths 128..1).
  const Tokenizer& tok = world();
  CHECK(tok.name() == "world");
  CHECK(tok.vocab_size() == 65530);
  struct Case {
    std::string text;
    std::vector<int32_t> ids;
  };
  const std::vector<Case> cases = {
      {"Hello, world! The quick brown fox jumps over the lazy dog.",
       {33155, 45, 40213, 34, 20996, 39418, 37917, 21704, 38828, 31601, 22590, 31261, 21551, 47}},
      {"\xc3\x87" "a va tr\xc3\xa8s bien, merci \xe2\x80\x94 d\xc3\xa9j\xc3\xa0 vu \xc3\xa0 l'\xc3\xa9t\xc3\xa9.",  // Ça va très bien, merci — déjà vu à l'été.
       {2469, 98, 4840, 40030, 30279, 45, 31409, 106, 22898, 45814, 4853, 4961, 343, 40, 36127, 47}},
      {"\xe6\x88\x91\xe7\x88\xb1\xe8\x87\xaa\xe7\x84\xb6\xe8\xaf\xad\xe8\xa8\x80\xe5\xa4\x84\xe7\x90\x86\xe3\x80\x82",  // 我爱自然语言处理。
       {12605, 14299, 15847, 14221, 16728, 16537, 11621, 14486, 10080}},
      {"\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\xe3\x80\x81\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81",  // こんにちは、世界！
       {10115, 10165, 10136, 10127, 10139, 10079, 10267, 14610, 19126}},
      {"Emoji: \xf0\x9f\x99\x82\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd\xf0\x9f\x9a\x80",  // Emoji: 🙂👍🏽🚀
       {995, 2094, 106, 59, 32845, 28333, 3319, 144, 190, 3319, 155, 129}},
      {"\tdef f(x):\n\t\treturn x*2\r\n", {10, 7334, 337, 41, 121, 501, 3324, 42178, 355, 43, 51, 263}},
      {std::string("ab\xff\xfe\xc3(\xe2\x82\x80"), {1734, 256, 255, 196, 41, 9852}},  // invalid UTF-8
  };
  for (const Case& c : cases) {
    INFO("text: " << c.text);
    CHECK(tok.encode(c.text) == c.ids);
    CHECK(tok.decode(c.ids) == c.text);
  }
  CHECK(tok.encode("").empty());
  CHECK(tok.decode({}).empty());
}

TEST_CASE("World tokenizer round-trips any bytes") {
  const Tokenizer& tok = world();
  const std::vector<std::string> texts = {
      "Plain English, with punctuation; and \"quotes\" - and numbers 12345.",
      "Na\xc3\xafve fa\xc3\xa7" "ade, \xc3\xa5ngstr\xc3\xb6m, \xc5\x81\xc3\xb3" "d\xc5\xba, \xc3\x9f",  // naïve façade, ångström, Łódź, ß
      "\xe4\xb8\xad\xe6\x96\x87\xe6\xb5\x8b\xe8\xaf\x95\xef\xbc\x8c\xe6\xb7\xb7\xe5\x90\x88 English",  // 中文测试，混合 English
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",  // 日本語のテキスト
      "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 \xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c\x88",  // family ZWJ, rainbow flag
      std::string("\x80\x81\xc0\xaf\xed\xa0\x80\xf8\x88\x80\x80\x80\xff", 13),  // invalid UTF-8 only
      std::string("nul\0inside\0", 11),
      std::string(300, ' '),  // longer than the longest token (128 spaces)
  };
  for (const std::string& t : texts) {
    INFO("text: " << t);
    CHECK(tok.decode(tok.encode(t)) == t);
  }
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
  CHECK(tok.encode(all_bytes).size() == 209);  // Python reference count
  CHECK(tok.decode(tok.encode(all_bytes)) == all_bytes);
  CHECK(tok.encode(std::string(300, ' ')) == std::vector<int32_t>({65529, 65529, 65487}));  // Python reference: 128+128+44 spaces
  CHECK(tok.token_bytes(65487) == std::string(44, ' '));

  std::mt19937 rng(12345);
  for (int round = 0; round < 20; ++round) {
    std::string random(1 + rng() % 2000, '\0');
    for (char& c : random) c = static_cast<char>(rng() & 0xff);
    REQUIRE(tok.decode(tok.encode(random)) == random);
  }
}

TEST_CASE("World tokenizer id range") {
  const Tokenizer& tok = world();
  CHECK(tok.token_bytes(kWorldEndOfTextId).empty());
  CHECK(tok.decode({0, 33155, 0}) == "Hello");  // end-of-text decodes to nothing
  require_error_containing<UsageError>([&] { tok.token_bytes(65530); }, "token id 65530 is out of range");
  require_error_containing<UsageError>([&] { tok.token_bytes(-1); }, "token id -1 is out of range");
  require_error_containing<UsageError>([&] { tok.decode({33155, 70000}); }, "70000");
}

TEST_CASE("Tiny Shakespeare: the first 100 KB round-trips with a plausible token count") {
  const std::string path = test::vendored_dir() + "/data/tinyshakespeare.txt";
  const std::string text = read_text(path, 100000);
  REQUIRE(text.size() == 100000);
  const std::vector<int32_t> ids = world().encode(text);
  CHECK(world().decode(ids) == text);
  CHECK(ids.size() == 29763);  // the Python reference tokenizer's count
  // English runs at roughly 3-4 bytes per World token; Shakespeare's short lines sit near 3.4.
  const double bytes_per_token = double(text.size()) / double(ids.size());
  CHECK(bytes_per_token > 3.0);
  CHECK(bytes_per_token < 4.5);
  WARN("first 100 KB of tinyshakespeare: " << ids.size() << " tokens, " << bytes_per_token << " bytes per token");
}

// Speed is not asserted here (a loaded machine or a Debug build would fail it); it belongs to
// the benchmarks.
TEST_CASE("World tokenizer encodes the first 1 MB of tinyshakespeare to the reference token count") {
  const std::string text = read_text(test::vendored_dir() + "/data/tinyshakespeare.txt", 1000000);
  REQUIRE(text.size() == 1000000);
  const std::vector<int32_t> ids = world().encode(text);
  CHECK(ids.size() == 295686);  // the Python reference tokenizer's count
}

TEST_CASE("Loading the World vocabulary is quick") {
  const auto start = std::chrono::steady_clock::now();
  const auto tok = load_world_tokenizer(world_vocab_path());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(tok->vocab_size() == 65530);
  WARN("loaded the World vocabulary in " << seconds * 1000 << " ms");
}

TEST_CASE("Greedy longest match backs off to the longest token that matched") {
  // "abcd" is a token but "abc" is not: on "abce" the walk reaches "abc" without a token there,
  // so the match is "ab", then "c", then "e".
  const std::string path = write_scratch("greedy.txt", small_vocab("257 'ab' 2\n258 'abcd' 4\n259 'bc' 2\n"));
  const auto tok = load_world_tokenizer(path);
  CHECK(tok->vocab_size() == 260);
  const int32_t a = 'a' + 1, c = 'c' + 1, e = 'e' + 1;
  CHECK(tok->encode("abce") == std::vector<int32_t>({257, c, e}));
  CHECK(tok->encode("abcdabcd") == std::vector<int32_t>({258, 258}));
  CHECK(tok->encode("aabc") == std::vector<int32_t>({a, 257, c}));  // greedy, not optimal
  CHECK(tok->encode("abc") == std::vector<int32_t>({257, c}));
  CHECK(tok->decode({257, c, e}) == "abce");
}

TEST_CASE("Byte tokenizer") {
  const auto tok = make_byte_tokenizer();
  CHECK(tok->name() == "bytes");
  CHECK(tok->vocab_size() == 256);
  const std::string text = std::string("Hi \xff\x00\xe6\x88\x91", 8);
  CHECK(tok->encode(text) == std::vector<int32_t>({72, 105, 32, 255, 0, 230, 136, 145}));
  CHECK(tok->decode(tok->encode(text)) == text);
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
  const std::vector<int32_t> ids = tok->encode(all_bytes);
  std::vector<int32_t> expected(256);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(ids == expected);
  CHECK(tok->decode(ids) == all_bytes);
  CHECK(tok->token_bytes(65) == "A");
  require_error_containing<UsageError>([&] { tok->token_bytes(256); }, "token id 256 is out of range for the bytes tokenizer");
}

TEST_CASE("tokenizer_for chooses by vocabulary size and honours overrides") {
  // Use the vendored vocabulary whatever the developer's environment says.
  ScopedEnv vocab("RWKVLITE_WORLD_VOCAB", nullptr);
  ScopedEnv data("RWKVLITE_DATA_DIR", nullptr);
  CHECK(tokenizer_for(256, "")->name() == "bytes");
  const auto w = tokenizer_for(65536, "");
  CHECK(w->name() == "world");
  CHECK(w->vocab_size() == 65530);
  CHECK(tokenizer_for(65536, "bytes")->name() == "bytes");  // a larger model may use fewer ids
  CHECK(tokenizer_for(65536, "world")->name() == "world");
  CHECK(tokenizer_for(70000, "world")->vocab_size() == 65530);

  const std::string custom = write_scratch("custom.txt", small_vocab("257 ' the' 4\n"));
  const auto c = tokenizer_for(300, custom);
  CHECK(c->name() == "world");
  CHECK(c->vocab_size() == 258);
  CHECK(c->encode(" the") == std::vector<int32_t>({257}));

  require_error_containing<UsageError>([] { tokenizer_for(50277, ""); }, "no built-in tokenizer fits a model vocabulary of 50277");
  require_error_containing<UsageError>([] { tokenizer_for(50277, ""); }, "override");
  require_error_containing<UsageError>([] { tokenizer_for(100, "bytes"); }, "bytes tokenizer has 256 ids but the model's vocabulary has only 100");
  require_error_containing<UsageError>([] { tokenizer_for(256, "world"); }, "world tokenizer has 65530 ids but the model's vocabulary has only 256");
  require_error_containing<UsageError>([&] { tokenizer_for(257, custom); }, custom);
  require_error_containing<UsageError>([] { tokenizer_for(0, ""); }, "vocabulary of 0");
  require_error_containing<InputError>([] { tokenizer_for(256, "/nonexistent/vocab.txt"); }, "/nonexistent/vocab.txt");
}

TEST_CASE("find_world_vocab: environment, data directory, then the build's copy") {
  {
    ScopedEnv vocab("RWKVLITE_WORLD_VOCAB", nullptr);
    ScopedEnv data("RWKVLITE_DATA_DIR", nullptr);
    const std::string found = find_world_vocab();
    CHECK(found.find("rwkv-world-vocab/rwkv_vocab_v20230424.txt") != std::string::npos);
    CHECK(test::exists(found));
  }
  {
    const std::string custom = write_scratch("env_vocab.txt", small_vocab(""));
    ScopedEnv vocab("RWKVLITE_WORLD_VOCAB", custom.c_str());
    CHECK(find_world_vocab() == custom);
    CHECK(tokenizer_for(65536, "world")->vocab_size() == 257);
  }
  {
    ScopedEnv vocab("RWKVLITE_WORLD_VOCAB", "/nonexistent/world.txt");
    require_error_containing<InputError>([] { find_world_vocab(); }, "RWKVLITE_WORLD_VOCAB is set to '/nonexistent/world.txt'");
  }
  {
    const std::string data_dir = test::scratch_dir() + "/data";
    std::filesystem::create_directories(data_dir + "/rwkv-world-vocab");
    ScopedEnv vocab("RWKVLITE_WORLD_VOCAB", nullptr);
    ScopedEnv data("RWKVLITE_DATA_DIR", data_dir.c_str());
    // Not there yet: falls back to the build's copy.
    CHECK(find_world_vocab() != data_dir + "/rwkv-world-vocab/rwkv_vocab_v20230424.txt");
    std::ofstream(data_dir + "/rwkv-world-vocab/rwkv_vocab_v20230424.txt") << small_vocab("");
    CHECK(find_world_vocab() == data_dir + "/rwkv-world-vocab/rwkv_vocab_v20230424.txt");
  }
}

TEST_CASE("Malformed World vocabulary files give an InputError naming the line") {
  // Each case: the text of line 257 (after the 256 valid single-byte lines), and what the
  // error must say.
  struct Case {
    const char* line;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"257 'ab'", "expected 'ID TOKEN LENGTH'"},
      {"257 'ab' 3", "the length field says 3 bytes but the token has 2"},
      {"257 '\\xe9' 1", "the length field says 1 bytes but the token has 2"},  // str \xe9 is U+00E9
      {"257 'ab' x", "the length field 'x' is not a decimal number"},
      {"x7 'ab' 2", "the id field 'x7' is not a decimal number"},
      {"0 'ab' 2", "id 0 is out of range"},
      {"2000000 'ab' 2", "id 2000000 is out of range"},
      {"5 'ab' 2", "id 5 is already defined on line 5"},
      {"257 b'\\x41' 1", "the same token is already defined on line 66"},
      {"257 ab 2", "not a quoted Python literal"},
      {"257 'ab 2", "does not end with its opening quote"},
      {"257 'a'b' 3", "unescaped quote"},
      {"257 'ab\\' 2", "ends inside an escape"},
      {"257 'a\\qb' 3", "unknown escape \\q"},
      {"257 'a\\x4' 2", "\\x escape needs 2 hex digits"},
      {"257 b'\\u0041' 1", "\\u escape in a bytes literal"},
      {"257 '\\ud800' 3", "surrogate"},
      {"257 b'\xc3\xa9' 2", "non-ASCII character in a bytes literal"},
      {"257 '\xc3' 1", "invalid UTF-8"},
      {"257 '\\N{BULLET}' 3", "named escapes are not supported"},
      {"257 '' 0", "empty token"},
      {"", "empty line"},
  };
  int n = 0;
  for (const Case& c : cases) {
    INFO("line 257: " << c.line);
    const std::string path = write_scratch("bad" + std::to_string(n++) + ".txt", small_vocab(std::string(c.line) + "\n258 'zz' 2\n"));
    require_error_containing<InputError>([&] { load_world_tokenizer(path); }, "line 257: ");
    require_error_containing<InputError>([&] { load_world_tokenizer(path); }, c.says);
    require_error_containing<InputError>([&] { load_world_tokenizer(path); }, path);
  }

  // A vocabulary without the single byte 0x41 ('A') could not encode "A".
  std::string missing_a = small_vocab("");
  missing_a.erase(missing_a.find("66 b'\\x41' 1\n"), std::string("66 b'\\x41' 1\n").size());
  require_error_containing<InputError>([&] { load_world_tokenizer(write_scratch("missing_a.txt", missing_a)); },
                                       "has no token for the single byte 0x41");
  require_error_containing<InputError>([] { load_world_tokenizer("/nonexistent/vocab.txt"); }, "/nonexistent/vocab.txt");
  require_error_containing<InputError>([] { load_world_tokenizer(write_scratch("empty.txt", "")); }, "holds no tokens");

  // Accepted variants: no final newline, CRLF line endings, every Python escape form.
  CHECK(load_world_tokenizer(write_scratch("no_newline.txt", small_vocab("257 'ab' 2")))->vocab_size() == 258);
  std::string crlf;
  for (char ch : small_vocab("257 'ab' 2\n")) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  CHECK(load_world_tokenizer(write_scratch("crlf.txt", crlf))->token_bytes(257) == "ab");
  const auto escapes = load_world_tokenizer(write_scratch(
      "escapes.txt", small_vocab("257 '\\a\\b\\f\\v\\101\\0' 6\n258 \"\\U0001F600 \\\"q\\\"\" 8\n259 b'\\377\\x00' 2\n")));
  CHECK(escapes->token_bytes(257) == std::string("\a\b\f\vA\0", 6));
  CHECK(escapes->token_bytes(258) == "\xf0\x9f\x98\x80 \"q\"");
  CHECK(escapes->token_bytes(259) == std::string("\xff\x00", 2));
}
