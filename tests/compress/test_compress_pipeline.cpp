// End to end without LibTorch (so it also runs under the sanitizers): rwkvlite compress ->
// compact file -> runtime, on the real tiny models.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "converters/rwkvcpp_file.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/engine/engine.h"
#include "runtime/format/codec.h"
#include "runtime/format/compact_format.h"
#include "runtime/format/compact_reader.h"
#include "runtime/format/encoding.h"
#include "runtime/format/layout.h"
#include "tests/support/pipeline_test_helpers.h"
#include "runtime/store/compact_model.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

TEST_CASE("a dense FP32 compact file runs like the dense model", "[pipeline]") {
  for (const char* stem : {"7v0-834K", "5v2-730K"}) {
    const std::string model = tiny_model_path(stem, "FP32");
    INFO(model);
    const std::string out = compress(model, "dense-fp32.toml", std::string(stem) + "-f32.rwkvlite", 2);
    CompactEngine ce = load_compact_engine(out, 2);
    Engine dense(read_rwkvcpp(model), 2);
    const std::string text = "First Citizen:\nBefore we proceed any further, hear me speak.";
    const double d = max_abs_diff(logits_after(*ce.engine, text), logits_after(dense, text));
    INFO("max |logit difference| " << d);
    // Same weights; only the summation order of the format's dot kernel differs.
    CHECK(d < 1e-4);
    // Every weight byte the engine holds is accounted: within 1% of the dense engine's storage.
    const double held = static_cast<double>(ce.residency->peak());
    CHECK(std::fabs(held - weights_storage_bytes(dense.weights())) / held < 0.01);
  }
}

TEST_CASE("compression output is byte-identical for any thread count", "[pipeline]") {
  const std::string model = tiny_model_path("5v2-730K", "FP32");
  const std::string a = compress(model, "default.toml", "det-1.rwkvlite", 1, {"calibration.bytes=20000"});
  const std::string b = compress(model, "default.toml", "det-2.rwkvlite", 2, {"calibration.bytes=20000"});
  CHECK(bytes_of(a) == bytes_of(b));
}

TEST_CASE("corruption of a tensor byte is caught by verify and at load, truncation at open", "[pipeline]") {
  const std::string model = tiny_model_path("7v0-834K", "FP32");
  const std::string clean = compress(model, "int8.toml", "corrupt-src.rwkvlite", 2);
  const auto file = format::CompactFile::open(clean);
  CHECK(file.verify().empty());
  const format::TensorInfo& t = file.tensor("blocks.5.att.key.weight");
  const uint64_t pos = file.preamble().data_offset + t.offset + t.nbytes / 2;
  std::vector<uint8_t> bytes = bytes_of(clean);
  bytes[pos] ^= 0x10;
  const std::string bad = scratch_dir() + "/corrupt.rwkvlite";
  {
    std::ofstream f(bad, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  const auto corrupted = format::CompactFile::open(bad);  // header intact: opens
  const auto problems = corrupted.verify();
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("blocks.5.att.key.weight") != std::string::npos);
  CHECK_THROWS_AS(load_compact_engine(bad, 1), InputError);

  const std::string cut = scratch_dir() + "/truncated.rwkvlite";
  {
    std::ofstream f(cut, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size() - 100));
  }
  CHECK_THROWS_AS(format::CompactFile::open(cut), InputError);
}

TEST_CASE("the default config shrinks a tiny model and runs it", "[pipeline]") {
  const std::string model = tiny_model_path("5v2-730K", "FP32");
  const std::string out = compress(model, "default.toml", "default.rwkvlite", 2, {"calibration.bytes=50000"});
  const uint64_t dense = file_size_or_throw(model);
  const uint64_t compact = file_size_or_throw(out);
  INFO("dense " << dense << " bytes, compact " << compact);
  CHECK(compact * 3 < dense);  // FP32 -> low-rank + int8/int4 is well over 3x
  CompactEngine ce = load_compact_engine(out, 2);
  CHECK(ce.residency->peak() * 3 < static_cast<int64_t>(dense));
  const auto a = logits_after(*ce.engine, "ROMEO:\nBut soft, what light through yonder window breaks?");
  for (float v : a) REQUIRE(std::isfinite(v));
}

TEST_CASE("quantized v7 LoRA factors are stored transposed and run as the round-tripped model", "[pipeline][lora]") {
  const std::string model_path = tiny_model_path("7v0-834K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(model_path);
  const std::string cfg = scratch_dir() + "/lora-i4.toml";
  {
    std::ofstream f(cfg);
    f << "[[pass]]\ntype = \"quantize\"\n"
         "rules = [ { targets = [\"blocks.*.att.w1\", \"blocks.*.att.w2\", \"blocks.*.att.a1\", \"blocks.*.att.a2\","
         " \"blocks.*.att.v1\", \"blocks.*.att.v2\", \"blocks.*.att.g1\", \"blocks.*.att.g2\"], encoding = \"i4g32\" } ]\n";
  }
  CompressOptions o;
  o.model_path = model_path;
  o.config_path = cfg;
  o.output_path = scratch_dir() + "/lora-i4.rwkvlite";
  o.force = true;
  o.threads = 2;
  const CompressPlanSummary plan = plan_compress(o, builtin_passes());
  REQUIRE(run_compress(o, builtin_passes()) == 0);
  const std::vector<uint8_t> written = bytes_of(o.output_path);
  CHECK(plan.size.data_bytes == static_cast<int64_t>(format::decode_preamble(written.data()).data_size));

  // The dense model with each factor round-tripped as the file stores it: transposed, rows in i4g32.
  Model dense = read_rwkvcpp(model_path);
  Model expected = dense;
  const format::EncodingSpec spec = format::parse_encoding("i4g32");
  const format::CompactFile file = format::CompactFile::open(o.output_path);
  int64_t factors = 0, saved_bytes = 0;
  for (auto& [name, t] : expected.tensors) {
    if (!layout::is_lora_factor(name)) continue;
    ++factors;
    INFO(name);
    CHECK(file.find(name) == nullptr);
    const format::TensorInfo* stored = file.find(layout::lora_rows(name));
    REQUIRE(stored != nullptr);
    CHECK(stored->rows == t.cols());
    CHECK(stored->cols == t.rows());
    CHECK(format::encoding_name(stored->encoding) == "i4g32");
    const Tensor rows = transposed(t);
    t.data = transposed(Tensor{rows.shape, format::round_trip_rows(rows.data.data(), rows.rows(), rows.cols(), spec)}).data;
    saved_bytes += t.numel() * 4 - static_cast<int64_t>(stored->nbytes);
  }
  CHECK(factors == 8 * dense.dims.n_layer - 2);  // layer 0 has no value-residual LoRA
  CompactEngine ce = load_compact_engine(o.output_path, 2);
  Engine reference(expected, 2);
  Engine fp32(dense, 2);
  const std::string text = "First Citizen:\nBefore we proceed any further, hear me speak.";
  const std::vector<float> got = logits_after(*ce.engine, text);
  const double to_round_trip = max_abs_diff(got, logits_after(reference, text));
  const double to_fp32 = max_abs_diff(got, logits_after(fp32, text));
  INFO("max |logit difference|: " << to_round_trip << " to the round-tripped model, " << to_fp32 << " to FP32");
  CHECK(to_round_trip < 1e-4);
  CHECK(to_fp32 > 10 * to_round_trip);  // the factors really are the quantized ones
  // The encoded factors are counted as resident at their stored size.
  const int64_t expected_resident = weights_storage_bytes(fp32.weights()) - saved_bytes;
  CHECK(std::llabs(ce.residency->peak() - expected_resident) * 100 < expected_resident);
}
