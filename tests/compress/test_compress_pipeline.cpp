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
#include "runtime/format/compact_reader.h"
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
