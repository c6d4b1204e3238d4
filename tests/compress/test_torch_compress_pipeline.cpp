// End to end on the trained reference model (.pth, so it needs LibTorch): the accuracy gate.
#include "converters/model_io.h"
#include "compress/algo/torch_parts.h"
#include "runtime/eval/dense_predictor.h"
#include "runtime/eval/text_metrics.h"
#include "runtime/eval/text_source.h"
#include "runtime/engine/engine.h"
#include "tests/support/pipeline_test_helpers.h"
#include "runtime/store/compact_model.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

// The accuracy gate of issue #5 on the trained reference model: configs/default.toml keeps
// bits per byte within 2% of dense and peak resident weight bytes at least 3x below dense FP16.
TEST_CASE("default config on the reference model: within 2% bits per byte, 3x below dense FP16", "[pipeline][torch]") {
  register_torch_parts();
  const std::string model = source_dir() + "/models/reference/rwkv5-ref-6x256.pth";
  const std::string out = compress(model, "default.toml", "ref-default.rwkvlite", 2);
  const std::string fp16 = compress(model, "dense-fp16.toml", "ref-fp16.rwkvlite", 2);
  CompactEngine compressed = load_compact_engine(out, 2);
  CompactEngine half = load_compact_engine(fp16, 2);
  Engine dense(load_model(model), 2);
  const std::string text = read_text_range(source_dir() + "/third_party/data/tinyshakespeare.txt", kHeldOutStart, 8000);
  std::vector<int32_t> tokens(text.begin(), text.end());
  for (auto& t : tokens) t &= 0xff;
  const std::vector<int32_t> sizes(tokens.size(), 1);
  auto p_dense = make_engine_predictor(std::make_unique<Engine>(load_model(model), 2));
  auto p_comp = make_engine_predictor(std::move(compressed.engine));
  const TextMetrics m = evaluate_text(*p_comp, tokens, sizes, p_dense.get());
  const double ratio = static_cast<double>(half.residency->peak()) / compressed.residency->peak();
  INFO("dense " << m.reference_bits_per_byte << " bpb, compressed " << m.bits_per_byte << " bpb, KL " << m.kl_mean
                << ", top-1 agreement " << m.top1_agreement << ", resident " << compressed.residency->peak()
                << " vs FP16 " << half.residency->peak() << " (" << ratio << "x)");
  CHECK(m.bits_per_byte <= 1.02 * m.reference_bits_per_byte);
  CHECK(ratio >= 3.0);
  CHECK(m.top1_agreement > 0.9);
}
