// The shipped mid-size reference models (models/reference, v5.2; models/reference-v7, v7): the
// dense engine reproduces the logits of the Python implementations (float64), and the rwkv.cpp
// file made by the project's own converter gives the same logits.
#include <cmath>
#include <cstring>

#include "converters/model_io.h"
#include "converters/pth_file.h"
#include "converters/rwkvcpp_file.h"
#include "runtime/core/file_io.h"
#include "runtime/engine/engine.h"
#include "runtime/eval/text_source.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {
std::string ref_dir() { return source_dir() + "/models/reference"; }
std::string ref_v7_dir() { return source_dir() + "/models/reference-v7"; }

std::vector<float> read_floats(const std::string& path) {
  const std::vector<uint8_t> b = read_file_bytes(path, 1u << 28);
  std::vector<float> f(b.size() / 4);
  std::memcpy(f.data(), b.data(), f.size() * 4);
  return f;
}

// Feeds the first 256 held-out bytes one at a time; returns the max |Δ| against the Python
// logits in `dir`.
double max_delta_against_python(Engine& engine, const std::string& dir = ref_dir()) {
  const std::vector<float> expected = read_floats(dir + "/heldout-logits.bin");
  REQUIRE(expected.size() == 256u * 256u);
  const std::string text = read_text_range(source_dir() + "/third_party/data/tinyshakespeare.txt", kHeldOutStart, 256);
  State s = engine.new_state();
  std::vector<float> logits(256);
  double worst = 0;
  for (size_t p = 0; p < 256; ++p) {
    engine.eval_token(static_cast<unsigned char>(text[p]), s, logits.data());
    for (size_t v = 0; v < 256; ++v) worst = std::max(worst, std::fabs(static_cast<double>(logits[v]) - expected[p * 256 + v]));
  }
  return worst;
}
}  // namespace

TEST_CASE("the dense engine reproduces the Python reference logits of the trained model", "[reference][torch]") {
  enable_pth_support();
  Model m = load_model(ref_dir() + "/rwkv5-ref-6x256.pth");
  CHECK(m.arch == ArchVersion::V5_2);
  CHECK(m.dims.n_layer == 6);
  CHECK(m.dims.n_embd == 256);
  CHECK(m.dims.ffn_size == 896);
  CHECK(m.parameter_count() == 5265408);
  CHECK(m.ln_x_eps == Approx(64e-5f));  // BlinkDL's epsilon, what the model was trained with
  Engine engine(m, 2);
  const double d = max_delta_against_python(engine);
  INFO("max |logit delta| over 256 positions x 256 logits: " << d);
  CHECK(d <= 1e-3);

  // The rwkv.cpp FP32 file written by our converter: same tensors, same logits when the
  // epsilon the model was trained with is kept (rwkv.cpp's own v5 default is 1e-5).
  const std::string bin = scratch_dir() + "/rwkv5-ref-6x256-FP32.bin";
  save_model(m, bin, "fp32");
  LoadOptions lo;
  lo.ln_x_eps = 64e-5f;
  Engine from_bin(load_model(bin, lo), 2);
  CHECK(max_delta_against_python(from_bin) <= 1e-3);
}

TEST_CASE("the dense engine reproduces the Python reference logits of the v7 reference model", "[reference][torch]") {
  enable_pth_support();
  Model m = load_model(ref_v7_dir() + "/rwkv7-ref-6x256.pth");
  CHECK(m.arch == ArchVersion::V7);
  CHECK(m.dims.n_layer == 6);
  CHECK(m.dims.n_embd == 256);
  CHECK(m.parameter_count() == 5354752);
  Engine engine(m, 2);
  const double d = max_delta_against_python(engine, ref_v7_dir());
  INFO("max |logit delta| over 256 positions x 256 logits: " << d);
  CHECK(d <= 1e-3);

  const std::string bin = scratch_dir() + "/rwkv7-ref-6x256-FP32.bin";
  save_model(m, bin, "fp32");
  Engine from_bin(load_model(bin), 2);
  CHECK(max_delta_against_python(from_bin, ref_v7_dir()) <= 1e-3);
}
