// Choosing a tokenizer: where the World vocabulary lives, and which tokenizer a model needs.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/version.h"
#include "runtime/tokenizer/tokenizer.h"

namespace rwkvlite {
namespace {

constexpr int64_t kByteVocabSize = 256;
constexpr int64_t kWorldModelVocabSize = 65536;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string vocab_under(const std::string& data_dir) {
  return data_dir + "/rwkv-world-vocab/" + kWorldVocabFileName;
}

}  // namespace

std::string find_world_vocab() {
  // An explicit vocabulary path is a deliberate choice: if it is wrong, say so rather than
  // quietly using another file.
  const std::string explicit_path = env_or_empty("RWKVLITE_WORLD_VOCAB");
  if (!explicit_path.empty()) {
    if (!std::filesystem::is_regular_file(explicit_path)) {
      throw InputError("RWKVLITE_WORLD_VOCAB is set to '" + explicit_path + "', which is not a file");
    }
    return explicit_path;
  }
  // A data directory is a search location (it may hold other data but not the vocabulary),
  // so fall through to the build's own copy.
  std::vector<std::string> looked;
  const std::string data_dir = env_or_empty("RWKVLITE_DATA_DIR");
  if (!data_dir.empty()) looked.push_back(vocab_under(data_dir));
  looked.push_back(vocab_under(RWKVLITE_BUILD_DATA_DIR));
  for (const std::string& path : looked) {
    if (std::filesystem::is_regular_file(path)) return path;
  }
  std::string places;
  for (const std::string& path : looked) places += (places.empty() ? "'" : ", '") + path + "'";
  throw InputError("cannot find the RWKV World vocabulary: looked at " + places +
                   "; set RWKVLITE_WORLD_VOCAB to the path of " + kWorldVocabFileName);
}

std::unique_ptr<Tokenizer> tokenizer_for(int64_t model_vocab_size, const std::string& override) {
  if (model_vocab_size <= 0) {
    throw UsageError("cannot choose a tokenizer for a model with a vocabulary of " + std::to_string(model_vocab_size));
  }
  std::unique_ptr<Tokenizer> tok;
  if (override.empty()) {
    if (model_vocab_size == kByteVocabSize) {
      tok = make_byte_tokenizer();
    } else if (model_vocab_size == kWorldModelVocabSize) {
      tok = load_world_tokenizer(find_world_vocab());
    } else {
      throw UsageError("no built-in tokenizer fits a model vocabulary of " + std::to_string(model_vocab_size) +
                       " (bytes fits 256, world fits 65536); override the tokenizer with 'bytes', 'world' or "
                       "the path of a World-format vocabulary file");
    }
  } else if (override == "bytes") {
    tok = make_byte_tokenizer();
  } else if (override == "world") {
    tok = load_world_tokenizer(find_world_vocab());
  } else {
    tok = load_world_tokenizer(override);
  }
  // The model must have an output row for every id the tokenizer can produce.
  if (tok->vocab_size() > model_vocab_size) {
    const bool from_file = !override.empty() && override != tok->name();
    throw UsageError("the " + tok->name() + " tokenizer" + (from_file ? " from '" + override + "'" : "") + " has " +
                     std::to_string(tok->vocab_size()) + " ids but the model's vocabulary has only " +
                     std::to_string(model_vocab_size));
  }
  return tok;
}

}  // namespace rwkvlite
