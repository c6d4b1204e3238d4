// The two-level (clustered) head and the on-demand embedding, on the real tiny models: a proper
// distribution for p < 1, the dense head's logits bit for bit at p = 1, rows read = the kept
// clusters' rows, and a folded embedding read through a small cache giving the unfolded
// model's logits bit for bit.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "converters/rwkvcpp_file.h"
#include "runtime/core/error.h"
#include "runtime/engine/engine.h"
#include "tests/support/runtime_file_builder.h"
#include "runtime/store/compact_model.h"
#include "runtime/store/two_level_head.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

const TwoLevelHead& head_of(const CompactEngine& ce) {
  const auto* head = dynamic_cast<const TwoLevelHead*>(ce.engine->weights().head.get());
  REQUIRE(head != nullptr);
  return *head;
}

struct Files {
  Model model;
  std::string plain, clustered;
};

Files head_files(const std::string& stem) {
  Files f;
  f.model = read_rwkvcpp(tiny_model_path(stem, "FP32"));
  f.plain = write_runtime_file(f.model, RuntimeFileSpec{}, stem + "-plain.rwkvlite");
  RuntimeFileSpec spec;
  spec.clustered_head = true;
  spec.head_clusters = 16;
  spec.metadata["clustered_head"] = {{"k", 16}, {"p", 0.9}, {"min_clusters", 1}, {"max_clusters", 16}};
  f.clustered = write_runtime_file(f.model, spec, stem + "-clustered.rwkvlite");
  return f;
}

RuntimeOptions head_options(double p, int64_t min_clusters = 1, int64_t max_clusters = 16) {
  RuntimeOptions o;
  o.threads = 2;
  o.head_p = p;
  o.head_min_clusters = min_clusters;
  o.head_max_clusters = max_clusters;
  return o;
}

}  // namespace

TEST_CASE("with p = 1 the clustered head gives the dense head's logits bit for bit", "[head]") {
  RWKVLITE_REQUIRE_FILE_OR_SKIP(tiny_model_path("5v2-730K", "FP32"));
  const Files f = head_files("5v2-730K");
  CompactEngine plain = load_compact_engine(f.plain, 2);
  CompactEngine clustered = load_compact_engine(f.clustered, head_options(1.0));
  State a = plain.engine->new_state(), b = clustered.engine->new_state();
  const int64_t V = f.model.dims.n_vocab;
  std::vector<float> la(static_cast<size_t>(V)), lb(static_cast<size_t>(V));
  int64_t differing = 0;
  const std::vector<int32_t> tokens = held_out_tokens(100);
  for (int32_t t : tokens) {
    plain.engine->eval_token(t, a, la.data());
    clustered.engine->eval_token(t, b, lb.data());
    differing += std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) != 0 ? 1 : 0;
  }
  CHECK(differing == 0);
  CHECK(clustered.stats->head->clusters_kept == 16 * static_cast<int64_t>(tokens.size()));
  CHECK(clustered.stats->head->rows_scored == V * static_cast<int64_t>(tokens.size()));
  CHECK(clustered.stats->head->rows_read == V);  // each row read once, then cached
}

TEST_CASE("with p < 1 the clustered head is a proper distribution and scores only kept clusters", "[head]") {
  RWKVLITE_REQUIRE_FILE_OR_SKIP(tiny_model_path("5v2-730K", "FP32"));
  const Files f = head_files("5v2-730K");
  const int64_t V = f.model.dims.n_vocab, D = f.model.dims.n_embd;
  const std::vector<int32_t> tokens = held_out_tokens(300);
  for (const double p : {0.5, 0.9}) {
    INFO("p = " << p);
    RuntimeOptions o = head_options(p, 2, 12);
    o.head_cache_rows = 48;
    CompactEngine plain = load_compact_engine(f.plain, 2);
    CompactEngine clustered = load_compact_engine(f.clustered, o);
    const TwoLevelHead& head = head_of(clustered);
    const format::CompactFile file = format::CompactFile::open(f.clustered);
    const std::vector<int32_t> offsets = file.read_i32_tensor("head.cluster_offsets");
    const std::vector<int32_t> row_token = file.read_i32_tensor("head.row_token");

    State a = plain.engine->new_state(), b = clustered.engine->new_state();
    std::vector<float> dense(static_cast<size_t>(V)), got(static_cast<size_t>(V));
    double worst_sum_error = 0, kept_total = 0;
    int64_t row_mismatches = 0, kept_logit_mismatches = 0, bad_counts = 0;
    for (int32_t t : tokens) {
      const int64_t scored_before = clustered.stats->head->rows_scored;
      plain.engine->eval_token(t, a, dense.data());
      clustered.engine->eval_token(t, b, got.data());
      // softmax sums to 1.
      double mx = -INFINITY, sum = 0;
      for (float z : got) mx = std::max(mx, static_cast<double>(z));
      for (float z : got) sum += std::exp(static_cast<double>(z) - mx);
      double total = 0;
      for (float z : got) total += std::exp(static_cast<double>(z) - mx) / sum;
      worst_sum_error = std::max(worst_sum_error, std::fabs(total - 1.0));
      REQUIRE(std::isfinite(sum));
      // Rows scored = the kept clusters' sizes; their tokens' logits are the exact ones.
      int64_t kept_rows = 0;
      for (int64_t c : head.last_kept()) {
        kept_rows += offsets[static_cast<size_t>(c) + 1] - offsets[static_cast<size_t>(c)];
        for (int32_t r = offsets[static_cast<size_t>(c)]; r < offsets[static_cast<size_t>(c) + 1]; ++r) {
          const int32_t tok = row_token[static_cast<size_t>(r)];
          kept_logit_mismatches += std::memcmp(&dense[static_cast<size_t>(tok)], &got[static_cast<size_t>(tok)], 4) != 0;
        }
      }
      row_mismatches += clustered.stats->head->rows_scored - scored_before != kept_rows;
      const auto kept = static_cast<int64_t>(head.last_kept().size());
      bad_counts += kept < 2 || kept > 12;
      kept_total += static_cast<double>(kept);
    }
    CHECK(worst_sum_error < 1e-5);
    CHECK(row_mismatches == 0);
    CHECK(kept_logit_mismatches == 0);
    CHECK(bad_counts == 0);
    // Resident head bytes: the small tables plus at most the cache's rows.
    const int64_t tables = (V + 17 + 16) * 4 + 16 * D * 4;
    CHECK(clustered.stats->residency.head->peak() <= tables + 48 * D * 4);
    std::printf("[two-level head] p=%.2f: clusters kept/token %.2f of 16, head rows scored/token %.1f of %lld, rows "
                "read from file/token %.1f, |sum p - 1| <= %.2g, peak head resident %lld bytes\n",
                p, kept_total / static_cast<double>(tokens.size()),
                static_cast<double>(clustered.stats->head->rows_scored) / static_cast<double>(tokens.size()),
                static_cast<long long>(V),
                static_cast<double>(clustered.stats->head->rows_read) / static_cast<double>(tokens.size()),
                worst_sum_error, static_cast<long long>(clustered.stats->residency.head->peak()));
  }
}

TEST_CASE("clustered head options are checked", "[head]") {
  RWKVLITE_REQUIRE_FILE_OR_SKIP(tiny_model_path("5v2-730K", "FP32"));
  const Files f = head_files("5v2-730K");
  CHECK_THROWS_AS(load_compact_engine(f.clustered, head_options(0.0)), UsageError);
  CHECK_THROWS_AS(load_compact_engine(f.clustered, head_options(1.5)), UsageError);
  CHECK_THROWS_AS(load_compact_engine(f.clustered, head_options(0.9, 5, 3)), UsageError);
  // Settings from the file's metadata when not overridden.
  RuntimeOptions defaults;
  CompactEngine ce = load_compact_engine(f.clustered, defaults);
  CHECK(head_of(ce).clusters() == 16);
  RuntimeFileSpec bad;
  bad.neuron_major = true;
  bad.metadata["sparse_ffn"] = {{"neuron_cache_fraction", "half"}};
  const std::string bad_file = write_runtime_file(f.model, bad, "bad-metadata.rwkvlite");
  CHECK_THROWS_AS(load_compact_engine(bad_file, defaults), InputError);
}

TEST_CASE("a folded embedding read through a small cache gives the unfolded logits bit for bit", "[embedding]") {
  for (const char* stem : {"5v2-730K", "7v0-834K"}) {
    RWKVLITE_REQUIRE_FILE_OR_SKIP(tiny_model_path(stem, "FP32"));
    INFO(stem);
    const Model m = read_rwkvcpp(tiny_model_path(stem, "FP32"));
    const std::string plain = write_runtime_file(m, RuntimeFileSpec{}, std::string(stem) + "-emb-plain.rwkvlite");
    RuntimeFileSpec spec;
    spec.folded_embedding = true;
    spec.metadata["embedding_cache_rows"] = 16;
    const std::string folded = write_runtime_file(m, spec, std::string(stem) + "-emb-folded.rwkvlite");
    CompactEngine a = load_compact_engine(plain, 2);
    CompactEngine b = load_compact_engine(folded, 2);
    REQUIRE(b.engine->weights().embedding->includes_ln0());
    REQUIRE(b.stats->embedding);
    State sa = a.engine->new_state(), sb = b.engine->new_state();
    std::vector<float> la(static_cast<size_t>(m.dims.n_vocab)), lb(la.size());
    int64_t differing = 0;
    const std::vector<int32_t> tokens = held_out_tokens(200);
    for (int32_t t : tokens) {
      a.engine->eval_token(t, sa, la.data());
      b.engine->eval_token(t, sb, lb.data());
      differing += std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) != 0 ? 1 : 0;
    }
    CHECK(differing == 0);
    const int64_t row_bytes = m.dims.n_embd * 4;
    CHECK(b.stats->residency.embedding->peak() <= 16 * row_bytes);
    CHECK(b.stats->embedding->cache_rows == 16);
    CHECK(b.stats->embedding->lookups == static_cast<int64_t>(tokens.size()));
    std::printf("[embedding] %s folded, cache 16 of %lld rows: %lld rows read for %zu tokens, peak resident %lld bytes\n",
                stem, static_cast<long long>(m.dims.n_vocab), static_cast<long long>(b.stats->embedding->rows_read),
                tokens.size(), static_cast<long long>(b.stats->residency.embedding->peak()));

    // The override wins over the file's setting.
    RuntimeOptions o;
    o.embedding_cache_rows = 4;
    CompactEngine c = load_compact_engine(folded, o);
    CHECK(c.stats->embedding->cache_rows == 4);
  }
}
