// The byte tokenizer of byte-level models: token id i is the byte i, vocabulary 256.
#include <array>

#include "runtime/tokenizer/tokenizer.h"

namespace rwkvlite {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  ByteTokenizer() {
    for (int b = 0; b < 256; ++b) tokens_[b] = std::string(1, static_cast<char>(b));
  }

  std::vector<int32_t> encode(std::string_view bytes) const override {
    std::vector<int32_t> ids(bytes.size());
    for (size_t i = 0; i < bytes.size(); ++i) ids[i] = static_cast<uint8_t>(bytes[i]);
    return ids;
  }

  const std::string& token_bytes(int32_t id) const override {
    check_id(id);
    return tokens_[id];
  }

  int32_t vocab_size() const override { return 256; }
  std::string name() const override { return "bytes"; }

 private:
  // One-byte strings so token_bytes can hand out a reference, like every tokenizer.
  std::array<std::string, 256> tokens_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace rwkvlite
