// What every tokenizer shares: the id range check and decoding by concatenating token bytes.
#include "runtime/tokenizer/tokenizer.h"

#include "runtime/core/error.h"

namespace rwkvlite {

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw UsageError("token id " + std::to_string(id) + " is out of range for the " + name() +
                     " tokenizer, whose ids run from 0 to " + std::to_string(vocab_size() - 1));
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  // Most tokens are a few bytes; reserving avoids repeated growth on long outputs.
  out.reserve(ids.size() * 4);
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

}  // namespace rwkvlite
