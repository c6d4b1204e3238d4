// Synthetic checkpoints: deterministic, valid, and stable under the dense engine.
#include <cmath>

#include "converters/model_io.h"
#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/engine/engine.h"
#include "converters/synthetic_model.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

SyntheticModelOptions small(ArchVersion arch, uint64_t seed) {
  SyntheticModelOptions o;
  o.arch = arch;
  o.n_layer = 2;
  o.n_embd = 64;
  o.n_vocab = 1000;
  o.head_size = 16;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_CASE("synthetic checkpoints are deterministic, load back and run stably", "[synthesize]") {
  for (ArchVersion arch : {ArchVersion::V5_2, ArchVersion::V7}) {
    INFO(arch_name(arch));
    const std::string a = scratch_dir() + "/synth-" + arch_name(arch) + "-a.safetensors";
    const std::string b = scratch_dir() + "/synth-" + arch_name(arch) + "-b.safetensors";
    const std::string c = scratch_dir() + "/synth-" + arch_name(arch) + "-c.safetensors";
    save_model(make_synthetic_model(small(arch, 7)), a, "fp32");
    save_model(make_synthetic_model(small(arch, 7)), b, "fp32");
    save_model(make_synthetic_model(small(arch, 8)), c, "fp32");
    CHECK(read_file_bytes(a, 1u << 26) == read_file_bytes(b, 1u << 26));
    CHECK(read_file_bytes(a, 1u << 26) != read_file_bytes(c, 1u << 26));

    const Model m = load_model(a);  // validated on load
    CHECK(m.arch == arch);
    CHECK(m.dims.n_layer == 2);
    CHECK(m.dims.n_embd == 64);
    CHECK(m.dims.n_vocab == 1000);
    CHECK(m.dims.n_head == 4);
    CHECK(m.dims.ffn_size == (arch == ArchVersion::V7 ? 256 : 224));

    Engine engine(m, 2);
    State s = engine.new_state();
    std::vector<float> logits(1000);
    const std::string text = "A synthetic model predicts noise, but its numbers stay finite.";
    for (unsigned char ch : text) engine.eval_token(ch, s, logits.data());
    double max_logit = -INFINITY;
    for (float v : logits) {
      REQUIRE(std::isfinite(v));
      max_logit = std::max(max_logit, static_cast<double>(v));
    }
    double sum = 0, mean = 0, sq = 0;
    for (float v : logits) sum += std::exp(v - max_logit);
    double entropy = 0;
    for (float v : logits) {
      const double p = std::exp(v - max_logit) / sum;
      entropy -= p * std::log(p);
      mean += v / 1000.0;
    }
    for (float v : logits) sq += (v - mean) * (v - mean) / 1000.0;
    const double max_p = 1.0 / sum;
    INFO("logit std " << std::sqrt(sq) << ", entropy " << entropy << " nats (uniform " << std::log(1000.0)
                      << "), max p " << max_p);
    // Neither collapsed onto one token nor flat: logits spread about unit scale.
    CHECK(std::sqrt(sq) > 0.3);
    CHECK(std::sqrt(sq) < 10);
    CHECK(entropy > 0.5 * std::log(1000.0));
    CHECK(entropy < std::log(1000.0) - 0.05);
    CHECK(max_p < 0.5);
  }
}

TEST_CASE("synthetic model options are checked", "[synthesize]") {
  SyntheticModelOptions o = small(ArchVersion::V5_2, 1);
  o.head_size = 48;  // does not divide 64
  CHECK_THROWS_AS(make_synthetic_model(o), UsageError);
  o = small(ArchVersion::V4, 1);
  CHECK_THROWS_AS(make_synthetic_model(o), UsageError);
  o = small(ArchVersion::V7, 1);
  o.n_layer = 0;
  CHECK_THROWS_AS(make_synthetic_model(o), UsageError);
  o = small(ArchVersion::V7, 1);
  o.n_vocab = -5;
  CHECK_THROWS_AS(make_synthetic_model(o), UsageError);
  // The 0.1B shape's dimensions, without building it.
  SyntheticModelOptions big;
  big.arch = ArchVersion::V7;
  const ModelDims d = synthetic_dims(big);
  CHECK(d.n_head == 12);
  CHECK(d.ffn_size == 3072);
  CHECK(d.lora_w == 64);
  CHECK(d.lora_a == 64);
  CHECK(d.lora_v == 32);
  CHECK(d.lora_g == 128);
  big.arch = ArchVersion::V5_2;
  CHECK(synthetic_dims(big).ffn_size == 2688);
}
