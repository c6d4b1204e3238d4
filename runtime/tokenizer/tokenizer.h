// Tokenizers: text bytes <-> token ids, for feeding a model and reading its output.
//
// Two kinds exist. The byte tokenizer (vocabulary 256, token id = byte value) serves the tiny
// byte-level test models. The RWKV "World" tokenizer serves every RWKV World checkpoint; it is
// loaded from the vendored vocabulary file and encodes by greedy longest match over bytes, as
// the reference implementation does. Both encode any byte string, valid UTF-8 or not, and
// decode(encode(x)) == x always holds, so text never has to be valid UTF-8 to be scored.
//
// Tokenizers are immutable once built: every method is const and safe to call from several
// threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rwkvlite {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `bytes`. Never fails: every single byte is a token of every tokenizer.
  virtual std::vector<int32_t> encode(std::string_view bytes) const = 0;
  // Concatenated bytes of the tokens; throws UsageError for an id outside [0, vocab_size()).
  // The World end-of-text id (0) and ids the vocabulary leaves unassigned decode to nothing.
  virtual std::string decode(const std::vector<int32_t>& ids) const;
  // Bytes of one token (empty for end-of-text and unassigned ids); UsageError if out of range.
  virtual const std::string& token_bytes(int32_t id) const = 0;
  // One past the highest id the tokenizer can produce or decode. For the vendored World
  // vocabulary this is 65,530 (ids 1..65,529 plus end-of-text 0), less than the 65,536 rows
  // of a World model's head: the head's last 6 rows are never a token.
  virtual int32_t vocab_size() const = 0;
  virtual std::string name() const = 0;  // "bytes" or "world"

 protected:
  // Throws UsageError unless 0 <= id < vocab_size(); the one range check every method shares.
  void check_id(int32_t id) const;
};

// End-of-text id of the World vocabulary; it has no bytes and never comes out of encode().
inline constexpr int32_t kWorldEndOfTextId = 0;
// The vocabulary file name, as vendored under <data dir>/rwkv-world-vocab/.
inline constexpr const char* kWorldVocabFileName = "rwkv_vocab_v20230424.txt";

// Vocabulary 256: token id i is the single byte i.
std::unique_ptr<Tokenizer> make_byte_tokenizer();

// Reads a World-format vocabulary file (lines "ID TOKEN LENGTH", TOKEN a Python str or bytes
// literal) strictly. Returns token bytes indexed by id: entry 0 (end-of-text) and ids the file
// does not assign are empty. Throws InputError naming the file and line for a malformed line,
// a length that does not match the token's bytes, an id outside [1, 1,048,575], a duplicate id
// or token, a missing file, or a vocabulary lacking a single-byte token for some byte.
std::vector<std::string> read_world_vocab(const std::string& vocab_path);

// A World tokenizer over the vocabulary in `vocab_path` (see read_world_vocab for the errors).
std::unique_ptr<Tokenizer> load_world_tokenizer(const std::string& vocab_path);

// Path of the World vocabulary: $RWKVLITE_WORLD_VOCAB if set (it must exist), else
// $RWKVLITE_DATA_DIR/rwkv-world-vocab/rwkv_vocab_v20230424.txt, else the same file under the
// build's third_party directory. Throws InputError listing the places it looked.
std::string find_world_vocab();

// The tokenizer for a model with `model_vocab_size` output rows. `override` "" chooses from the
// size (256 -> bytes, 65536 -> world), "bytes" or "world" forces one, anything else is a path to
// a World-format vocabulary file. UsageError if no tokenizer fits the size or the tokenizer has
// more ids than the model; InputError if a vocabulary file cannot be read.
std::unique_ptr<Tokenizer> tokenizer_for(int64_t model_vocab_size, const std::string& override);

}  // namespace rwkvlite
