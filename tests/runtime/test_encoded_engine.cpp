// Engines over stored encodings (f16, i8, i4 and low-rank factors) on the real tiny models:
// sequence mode, token mode and thread counts give the same logits bit for bit, because the
// batched and the vector kernels repeat the portable per-token arithmetic exactly.
#include <cstring>
#include <string>
#include <vector>

#include "converters/rwkvcpp_file.h"
#include "runtime/format/compact_writer.h"
#include "runtime/format/layout.h"
#include "runtime/format/model_json.h"
#include "runtime/store/compact_model.h"
#include "tests/support/runtime_file_builder.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

// Every matrix in `matrix_encoding`, the others f32; each layer's att.key as random rank-8
// low-rank factors, so LowRankProjection runs too.
std::string write_encoded_file(const Model& m, const std::string& matrix_encoding, const std::string& name) {
  using namespace format;
  const std::string path = scratch_dir() + "/" + name;
  const EncodingSpec enc = parse_encoding(matrix_encoding);
  CompactWriter w(path);
  for (const auto& [n, t] : m.tensors) {
    const bool matrix = t.shape.size() == 2 && n != layout::kEmbedding && t.shape[1] % 32 == 0;
    if (matrix && n.find("att.key.weight") != std::string::npos) {
      const int64_t rows = t.shape[0], cols = t.shape[1], r = 8;
      const auto a = pseudo_random(static_cast<size_t>(r * cols), 11, 0.2f);
      const auto b = pseudo_random(static_cast<size_t>(rows * r), 12, 0.2f);
      const std::string base = layout::matrix_base(n);
      w.add_tensor(layout::lowrank_a(base), enc, {r, cols}, a.data(), kChecksumDefaultBlocks);
      w.add_tensor(layout::lowrank_b(base), enc, {rows, r}, b.data(), kChecksumDefaultBlocks);
      continue;
    }
    w.add_tensor(n, matrix ? enc : EncodingSpec{Encoding::F32, {}}, t.shape, t.data.data(), kChecksumDefaultBlocks);
  }
  w.finish(arch_to_json(m.arch, m.ln_x_eps), dims_to_json(m.dims), nlohmann::json::object());
  return path;
}

std::vector<float> last_logits_by_token(Engine& e, const std::vector<int32_t>& tokens) {
  State s = e.new_state();
  std::vector<float> logits(static_cast<size_t>(e.vocab_size()));
  for (size_t i = 0; i < tokens.size(); ++i) e.eval_token(tokens[i], s, i + 1 == tokens.size() ? logits.data() : nullptr);
  return logits;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("encoded engines give identical logits in sequence mode, token mode and on 1 or 2 threads",
          "[engine][sequence][threads]") {
  const std::vector<int32_t> tokens = held_out_tokens(40);
  int checked = 0;
  for (const TinyModel& tm : kTinyModels) {
    const std::string src = tiny_model_path(tm.stem, "FP32");
    RWKVLITE_REQUIRE_FILE_OR_SKIP(src);
    const Model model = read_rwkvcpp(src);
    for (const char* encoding : {"f16", "i8", "i4g32"}) {
      INFO(src << " " << encoding);
      const std::string path = write_encoded_file(model, encoding, std::string(tm.stem) + "-" + encoding + ".rwkvlite");
      CompactEngine one = load_compact_engine(path, 1), two = load_compact_engine(path, 2);
      const std::vector<float> by_token = last_logits_by_token(*one.engine, tokens);
      CHECK(same_bits(by_token, last_logits_by_token(*two.engine, tokens)));
      State s = two.engine->new_state();
      std::vector<float> by_sequence(by_token.size());
      two.engine->eval_sequence(tokens.data(), tokens.size(), s, by_sequence.data());
      CHECK(same_bits(by_token, by_sequence));
      ++checked;
    }
  }
  if (checked == 0) WARN("no tiny model present: nothing compared");
}
