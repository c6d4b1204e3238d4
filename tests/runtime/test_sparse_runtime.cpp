// The sparse (neuron-major) channel mix read on demand, on the real tiny models: parity with the
// dense engine when every neuron is computed, reads restricted to predicted neurons, bounded
// resident bytes, and checksum failures exactly when a corrupted row is read.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "converters/rwkvcpp_file.h"
#include "runtime/core/error.h"
#include "runtime/engine/engine.h"
#include "runtime/format/codec.h"
#include "tests/support/runtime_file_builder.h"
#include "runtime/store/compact_model.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

std::vector<std::vector<float>> all_logits(Engine& engine, const std::vector<int32_t>& tokens) {
  State s = engine.new_state();
  std::vector<std::vector<float>> out;
  std::vector<float> logits(static_cast<size_t>(engine.vocab_size()));
  for (int32_t t : tokens) {
    engine.eval_token(t, s, logits.data());
    out.push_back(logits);
  }
  return out;
}

double max_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double m = 0;
  for (size_t t = 0; t < a.size(); ++t) {
    for (size_t i = 0; i < a[t].size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[t][i]) - b[t][i]));
  }
  return m;
}

bool bit_identical(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t t = 0; t < a.size(); ++t) {
    if (a[t].size() != b[t].size() || std::memcmp(a[t].data(), b[t].data(), a[t].size() * sizeof(float)) != 0) return false;
  }
  return true;
}

RuntimeOptions runtime(int threads, std::optional<double> cache_fraction = std::nullopt) {
  RuntimeOptions o;
  o.threads = threads;
  o.neuron_cache_fraction = cache_fraction;
  return o;
}

}  // namespace

TEST_CASE("a neuron-major channel mix computing every neuron matches the dense engine", "[sparse]") {
  for (const char* stem : {"5v2-730K", "7v0-834K"}) {
    const std::string model_path = tiny_model_path(stem, "FP32");
    RWKVLITE_REQUIRE_FILE_OR_SKIP(model_path);
    INFO(stem);
    const Model m = read_rwkvcpp(model_path);
    RuntimeFileSpec spec;
    spec.neuron_major = true;
    const std::string file = write_runtime_file(m, spec, std::string(stem) + "-neurons.rwkvlite");
    const std::vector<int32_t> tokens = held_out_tokens(300);

    Engine dense(m, 2);
    CompactEngine sparse = load_compact_engine(file, runtime(2));
    REQUIRE(sparse.stats->ffn_layers.size() == static_cast<size_t>(m.dims.n_layer));
    const auto reference = all_logits(dense, tokens);
    const auto got = all_logits(*sparse.engine, tokens);
    const double d = max_abs_diff(got, reference);
    std::printf("[sparse parity] %s: max |dlogit| over %zu held-out tokens = %.3g\n", stem, tokens.size(), d);
    // Against the dense Engine (kernels::dot, 16 partial sums) the compact runtime's row dots
    // (8 partial sums) reorder every sum of the file's projections: each moves by at most
    // ~n·2^-24·Σ|terms|, compounded over the layers. 1e-4 is the bound every dense compact file
    // is held to.
    CHECK(d < 1e-4);

    // Against the dense path of the runtime itself (the same weights in a plain compact file,
    // value applied by row dots), the neuron-major path accumulates in the same order: equal bits.
    CompactEngine plain = load_compact_engine(write_runtime_file(m, RuntimeFileSpec{}, std::string(stem) + "-plain.rwkvlite"),
                                              runtime(2));
    CHECK(bit_identical(all_logits(*plain.engine, tokens), got));

    // With room for every neuron, each is read exactly once and then always hit.
    const int64_t F = m.dims.ffn_size;
    for (const auto& l : sparse.stats->ffn_layers) {
      CHECK(l->rows_read == F);
      CHECK(l->neurons_selected == F * static_cast<int64_t>(tokens.size()));
      CHECK(l->cache_hits == F * (static_cast<int64_t>(tokens.size()) - 1));
    }

    // The cache never changes the arithmetic: a quarter-size cache (re-reading rows all the
    // time) and one thread give the same bits, and hold at most their bound.
    CompactEngine small = load_compact_engine(file, runtime(1, 0.25));
    const std::vector<int32_t> few(tokens.begin(), tokens.begin() + 40);
    const std::vector<std::vector<float>> got_few(got.begin(), got.begin() + 40);
    CHECK(bit_identical(all_logits(*small.engine, few), got_few));
    const int64_t entry = F * m.dims.n_embd * 4 * 2 / F;  // one f32 key row + one f32 value row
    const int64_t cap = (F + 3) / 4;
    const int64_t peak = small.stats->residency.ffn->peak();
    std::printf("[sparse parity] %s: cache 0.25 -> peak ffn resident %lld bytes (bound %lld)\n", stem,
                static_cast<long long>(peak), static_cast<long long>(m.dims.n_layer * cap * entry));
    CHECK(peak <= m.dims.n_layer * cap * entry);
    CHECK(peak > 0);
    CHECK(small.stats->ffn_layers[0]->rows_read > F);  // it really re-read rows

    // Calibration needs exact pre-activations of every neuron: the sparse path refuses.
    State s = small.engine->new_state();
    std::vector<float> logits(static_cast<size_t>(m.dims.n_vocab));
    CHECK_THROWS_AS(small.engine->eval_token(65, s, logits.data(), [](const ChannelMixActivations&) {}), UsageError);
  }
}

namespace {

// The predictor's selection recomputed from the stored tensors, independently of the runtime.
struct IndependentPredictor {
  int64_t F = 0, D = 0, top_k = 0;
  float threshold = 0;
  TestPredictor mlp;
  std::vector<uint8_t> sign;  // F b1 rows
  size_t sign_row_bytes = 0;

  std::set<int64_t> select(const float* x) const {
    std::set<int64_t> out;
    std::vector<float> h(static_cast<size_t>(mlp.rank));
    for (int64_t r = 0; r < mlp.rank; ++r) {
      h[static_cast<size_t>(r)] = std::max(0.0f, format::dot_row(reinterpret_cast<const uint8_t*>(&mlp.down[static_cast<size_t>(r * D)]),
                                                                 x, D, format::Encoding::F32, {}));
    }
    for (int64_t j = 0; j < F; ++j) {
      const float score = format::dot_row(reinterpret_cast<const uint8_t*>(&mlp.up[static_cast<size_t>(j * mlp.rank)]),
                                          h.data(), mlp.rank, format::Encoding::F32, {});
      if (score > threshold) out.insert(j);
    }
    std::vector<std::pair<float, int64_t>> scored;
    for (int64_t j = 0; j < F; ++j) {
      scored.emplace_back(format::dot_row(&sign[static_cast<size_t>(j) * sign_row_bytes], x, D, format::Encoding::B1, {}), j);
    }
    std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    for (int64_t i = 0; i < top_k; ++i) out.insert(scored[static_cast<size_t>(i)].second);
    return out;
  }
};

RuntimeFileSpec predictor_spec(const Model& m) {
  RuntimeFileSpec spec;
  spec.neuron_major = true;
  spec.mlp_predictor = true;
  spec.mlp_rank = 16;
  spec.mlp_threshold = 4.0f;
  spec.sign_predictor = true;
  spec.sign_top_k = m.dims.ffn_size / 16;
  return spec;
}

}  // namespace

TEST_CASE("with a predictor the runtime reads only the rows of predicted neurons", "[sparse]") {
  const std::string model_path = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model_path);
  const Model m = read_rwkvcpp(model_path);
  const RuntimeFileSpec spec = predictor_spec(m);
  const std::string file = write_runtime_file(m, spec, "5v2-predicted.rwkvlite");
  const int64_t F = m.dims.ffn_size, D = m.dims.n_embd, L = m.dims.n_layer;

  std::vector<IndependentPredictor> predictors;
  const format::CompactFile cf = format::CompactFile::open(file);
  for (int64_t i = 0; i < L; ++i) {
    IndependentPredictor p;
    p.F = F;
    p.D = D;
    p.top_k = spec.sign_top_k;
    p.threshold = spec.mlp_threshold;
    p.mlp = test_predictor(m.dims, i, spec.mlp_rank);
    p.sign = cf.read_tensor("blocks." + std::to_string(i) + ".ffn.key.sign");
    p.sign_row_bytes = format::encoded_row_bytes(format::Encoding::B1, D);
    predictors.push_back(std::move(p));
  }

  int64_t tokens_seen = 0, unselected_reads = 0, selection_mismatches = 0, reads = 0;
  RuntimeOptions o = runtime(2, 0.125);
  o.neuron_trace = [&](const NeuronSelection& s) {
    const std::set<int64_t> expected = predictors[static_cast<size_t>(s.layer)].select(s.x_k.data());
    if (std::set<int64_t>(s.selected.begin(), s.selected.end()) != expected) ++selection_mismatches;
    for (int64_t row : s.rows_read) {
      ++reads;
      if (!expected.count(row)) ++unselected_reads;  // the test fails on any such read
    }
    tokens_seen += s.layer == 0 ? 1 : 0;
  };
  CompactEngine ce = load_compact_engine(file, o);
  const std::vector<int32_t> tokens = held_out_tokens(200);
  all_logits(*ce.engine, tokens);

  CHECK(tokens_seen == static_cast<int64_t>(tokens.size()));
  CHECK(reads > 0);
  CHECK(selection_mismatches == 0);
  REQUIRE(unselected_reads == 0);

  // Resident channel-mix bytes stay within the caches' bound plus the predictors.
  const int64_t cap = (F + 7) / 8;
  const int64_t entry = 2 * D * 4;
  const int64_t predictor_bytes =
      L * (spec.mlp_rank * D * 4 + F * spec.mlp_rank * 4 + F * static_cast<int64_t>(format::encoded_row_bytes(format::Encoding::B1, D)));
  const int64_t peak = ce.stats->residency.ffn->peak();
  CHECK(peak <= L * cap * entry + predictor_bytes);
  double selected = 0, read_per_token = 0;
  for (const auto& l : ce.stats->ffn_layers) {
    selected += static_cast<double>(l->neurons_selected) / static_cast<double>(l->tokens * F) / static_cast<double>(L);
    read_per_token += static_cast<double>(l->rows_read) / static_cast<double>(l->tokens);
  }
  std::printf("[sparse predictor] selected fraction %.3f, neuron rows read per token (all layers) %.1f, "
              "peak ffn resident %lld bytes (cache bound %lld + predictors %lld)\n",
              selected, read_per_token, static_cast<long long>(peak), static_cast<long long>(L * cap * entry),
              static_cast<long long>(predictor_bytes));

  // Audit mode measures recall and true sparsity on the runtime's own inputs, without changing
  // the results or the counted bytes.
  RuntimeOptions audit = runtime(2, 0.125);
  audit.audit_sparsity = true;
  CompactEngine audited = load_compact_engine(file, audit);
  CompactEngine plain = load_compact_engine(file, runtime(2, 0.125));
  const std::vector<int32_t> few(tokens.begin(), tokens.begin() + 60);
  CHECK(bit_identical(all_logits(*audited.engine, few), all_logits(*plain.engine, few)));
  CHECK(audited.stats->residency.total->peak() == plain.stats->residency.total->peak());
  for (const auto& l : audited.stats->ffn_layers) {
    REQUIRE(l->audit_tokens == static_cast<int64_t>(few.size()));
    const double recall = static_cast<double>(l->active_and_selected) / static_cast<double>(l->active);
    const double sparsity = 1.0 - static_cast<double>(l->active) / static_cast<double>(l->audit_tokens * F);
    std::printf("[sparse audit] layer %lld: recall %.3f, true sparsity %.3f, selected %.3f\n",
                static_cast<long long>(l->layer), recall, sparsity,
                static_cast<double>(l->neurons_selected) / static_cast<double>(l->tokens * F));
    CHECK(recall >= 0.0);
    CHECK(recall <= 1.0);
    CHECK(l->active > 0);
  }
}

TEST_CASE("a corrupted neuron row fails with InputError when, and only when, it is read", "[sparse]") {
  const std::string model_path = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model_path);
  const Model m = read_rwkvcpp(model_path);
  const std::string file = write_runtime_file(m, predictor_spec(m), "5v2-corrupt-src.rwkvlite");
  const std::vector<int32_t> tokens = held_out_tokens(30);

  std::set<int64_t> read_rows;  // layer 0
  RuntimeOptions o = runtime(1, 0.125);
  o.neuron_trace = [&](const NeuronSelection& s) {
    if (s.layer == 0) read_rows.insert(s.rows_read.begin(), s.rows_read.end());
  };
  CompactEngine clean = load_compact_engine(file, o);
  const auto clean_logits = all_logits(*clean.engine, tokens);
  int64_t unread = -1;
  for (int64_t j = 0; j < m.dims.ffn_size && unread < 0; ++j) {
    if (!read_rows.count(j)) unread = j;
  }
  REQUIRE(unread >= 0);
  REQUIRE(!read_rows.empty());
  const int64_t read = *read_rows.begin();

  auto corrupt = [&](const std::string& tensor, int64_t row, const std::string& name) {
    const std::string out = scratch_dir() + "/" + name;
    std::filesystem::copy_file(file, out, std::filesystem::copy_options::overwrite_existing);
    const format::TensorInfo t = format::CompactFile::open(file).tensor(tensor);
    std::fstream f(out, std::ios::in | std::ios::out | std::ios::binary);
    const auto pos = static_cast<std::streamoff>(format::kPreambleSize + t.offset + static_cast<uint64_t>(row) * t.row_bytes + 5);
    f.seekg(pos);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    f.seekp(pos);
    f.write(&c, 1);
    return out;
  };
  RuntimeOptions quiet = runtime(1, 0.125);

  // A row the prompt never needs: loading and running are unaffected.
  const std::string bad_unread = corrupt("blocks.0.ffn.value.neurons", unread, "corrupt-unread.rwkvlite");
  CompactEngine unaffected = load_compact_engine(bad_unread, quiet);
  CHECK(bit_identical(all_logits(*unaffected.engine, tokens), clean_logits));

  // A row the prompt needs: loading succeeds (rows are read on demand), running fails cleanly.
  for (const char* tensor : {"blocks.0.ffn.key.weight", "blocks.0.ffn.value.neurons"}) {
    INFO(tensor);
    const std::string bad_read = corrupt(tensor, read, std::string("corrupt-read-") + tensor);
    CompactEngine affected = load_compact_engine(bad_read, quiet);
    CHECK_THROWS_AS(all_logits(*affected.engine, tokens), InputError);
  }
}

TEST_CASE("the store refuses bad on-demand settings: InputError from the file, UsageError from options", "[sparse]") {
  const std::string model_path = tiny_model_path("5v2-730K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model_path);
  const Model m = read_rwkvcpp(model_path);
  auto file_with = [&](RuntimeFileSpec spec, const std::string& name) { return write_runtime_file(m, spec, name); };
  RuntimeFileSpec sparse;
  sparse.neuron_major = true;
  sparse.mlp_predictor = true;

  // The cache fraction must be in (0, 1], in the file unless an option replaces it.
  const std::string ok = file_with(sparse, "settings-ok.rwkvlite");
  CHECK_NOTHROW(load_compact_engine(ok, runtime(1)));
  CHECK_THROWS_AS(load_compact_engine(ok, runtime(1, 0.0)), UsageError);
  RuntimeFileSpec zero_fraction = sparse;
  zero_fraction.metadata["sparse_ffn"] = {{"neuron_cache_fraction", 0.0}};
  const std::string zero = file_with(zero_fraction, "settings-zero-fraction.rwkvlite");
  CHECK_THROWS_AS(load_compact_engine(zero, runtime(1)), InputError);
  CHECK_NOTHROW(load_compact_engine(zero, runtime(1, 0.5)));

  // Embedding cache rows: at least 1, from the option or the file.
  RuntimeFileSpec rows_zero;
  rows_zero.metadata["embedding_cache_rows"] = 0;
  const std::string rows_file = file_with(rows_zero, "settings-rows-zero.rwkvlite");
  CHECK_THROWS_AS(load_compact_engine(rows_file, runtime(1)), InputError);
  RuntimeOptions rows_option = runtime(1);
  rows_option.embedding_cache_rows = 8;
  CHECK_NOTHROW(load_compact_engine(rows_file, rows_option));  // the file's value is not read
  rows_option.embedding_cache_rows = 0;
  CHECK_THROWS_AS(load_compact_engine(ok, rows_option), UsageError);
  RuntimeFileSpec rows_text;
  rows_text.metadata["embedding_cache_rows"] = "many";
  CHECK_THROWS_AS(load_compact_engine(file_with(rows_text, "settings-rows-text.rwkvlite"), runtime(1)), InputError);

  // Clustered head settings of the wrong type.
  RuntimeFileSpec head;
  head.clustered_head = true;
  head.metadata["clustered_head"] = {{"p", "most"}};
  CHECK_THROWS_AS(load_compact_engine(file_with(head, "settings-head-p.rwkvlite"), runtime(1)), InputError);
}
