// The calibration cache (compress/pipeline/calibration_cache.h) in-process, on the tiny v5.2
// model with configs/lowrank-aware.toml (activation-aware low-rank, so it needs calibration and
// no LibTorch) and 5000 calibration bytes: an entry reads back bit for bit, runs that share a
// model and calibration settings calibrate once and write the bytes an uncached run writes, a
// change to the calibration settings misses, and a damaged entry is one warning, recomputed and
// overwritten.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "converters/model_io.h"
#include "runtime/core/error.h"
#include "runtime/format/layout.h"
#include "compress/pipeline/calibration.h"
#include "compress/pipeline/calibration_cache.h"
#include "tests/support/pipeline_test_helpers.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

const char* kCalibrationBytes = "calibration.bytes=5000";

std::string fresh_dir(const std::string& name) {
  const std::string d = scratch_dir() + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

nlohmann::json report_of(const std::string& out) {
  std::ifstream in(out + ".report.json");
  return nlohmann::json::parse(in);
}

// One compress of the tiny model with lowrank-aware.toml; returns the output path.
std::string compress_cached(const std::string& cache_dir, const std::string& out_name,
                            std::vector<std::string> overrides) {
  CompressOptions o;
  o.model_path = tiny_model_path("5v2-730K", "FP32");
  o.config_path = config("lowrank-aware.toml");
  o.output_path = scratch_dir() + "/" + out_name;
  o.force = true;
  o.threads = 2;
  o.overrides = std::move(overrides);
  o.calibration_cache_dir = cache_dir;
  REQUIRE(run_compress(o, builtin_passes()) == 0);
  return o.output_path;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Collects what is logged while it lives.
struct CapturedLog {
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  CapturedLog() {
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous); }
  std::vector<std::string> lines_with(const std::string& part) const {
    std::vector<std::string> out;
    for (const std::string& l : sink->last_formatted()) {
      if (l.find(part) != std::string::npos) out.push_back(l);
    }
    return out;
  }
};

bool same_bits(const CalibrationData& a, const CalibrationData& b) {
  auto eq = [](const auto& x, const auto& y) {
    return x.rows() == y.rows() && x.cols() == y.cols() &&
           std::memcmp(x.data(), y.data(), static_cast<size_t>(x.size()) * sizeof(*x.data())) == 0;
  };
  if (a.tokens != b.tokens || a.sample_stride != b.sample_stride || a.ffn_active_fraction != b.ffn_active_fraction ||
      !eq(a.head_inputs, b.head_inputs) || a.ffn_key_inputs.size() != b.ffn_key_inputs.size() ||
      a.input_second_moment.size() != b.input_second_moment.size()) {
    return false;
  }
  for (size_t l = 0; l < a.ffn_key_inputs.size(); ++l) {
    if (!eq(a.ffn_key_inputs[l], b.ffn_key_inputs[l])) return false;
  }
  for (const auto& [name, m] : a.input_second_moment) {
    if (!b.input_second_moment.count(name) || !eq(m, b.input_second_moment.at(name))) return false;
  }
  return true;
}

// Byte offset of the header field n_embd (after magic, version, reserved, key, description, and
// tokens, sample_stride, n_layer).
uint64_t n_embd_offset(const CalibrationCacheKey& key) { return 8 + 4 + 4 + 16 + 8 + key.description.size() + 3 * 8; }

}  // namespace

TEST_CASE("a calibration cache entry reads back bit for bit and a damaged one is refused", "[calibration_cache]") {
  const Model model = load_model(tiny_model_path("5v2-730K", "FP32"));
  CalibrationRequest req;
  req.text = std::string(4000, 'a') + "First Citizen: before we proceed any further, hear me speak.";
  req.max_samples = 1000;
  for (const auto& [name, t] : model.tensors) {
    if (layout::is_calibrated_projection(name)) req.projections.insert(name);
  }
  const CalibrationData data = run_calibration(model, req);
  const CalibrationTokens tokens = calibration_tokens(model, req.text);
  REQUIRE(tokens.count == data.tokens);
  const CalibrationShape shape = calibration_shape(model, req.projections, tokens.count, req.max_samples);
  REQUIRE(shape.sample_stride == data.sample_stride);
  CalibrationCacheInputs in;
  in.model_xxh64 = "0123456789abcdef";
  in.text_xxh64 = "00000000000000ff";
  in.tokens_xxh64 = tokens.xxh64;
  in.projections = req.projections;
  const CalibrationCacheKey key = calibration_cache_key(in);
  REQUIRE(key.key.size() == 16);

  const std::string dir = fresh_dir("calib-cache-unit");
  const std::string path = calibration_cache_path(dir, key.key);
  write_calibration_cache(path, key, shape, data);
  // The size the format states: header, counts, each D x D double, the sampled float rows, the
  // active fractions and the checksum.
  uint64_t want = 8 + 4 + 4 + 16 + 8 + key.description.size() + 6 * 8;
  for (const auto& [name, d] : shape.projection_dims) want += 8 + name.size() + 8 + uint64_t(d) * d * 8;
  want += uint64_t(shape.n_layer + 1) * shape.n_samples * shape.n_embd * 4 + uint64_t(shape.n_layer) * 8 + 8;
  const std::vector<uint8_t> good = bytes_of(path);
  CHECK(good.size() == want);
  // Byte tokens: 4060 of them, every 5th sampled (at most 1000 samples).
  CHECK(tokens.count == 4060);
  CHECK(shape.sample_stride == 5);
  CHECK(shape.n_samples == 812);
  CHECK(same_bits(read_calibration_cache(path, key, shape), data));

  auto refused_because = [&](const std::vector<uint8_t>& bytes, const std::string& why) {
    write_bytes(path, bytes);
    try {
      read_calibration_cache(path, key, shape);
      FAIL("accepted a damaged file (expected: " << why << ")");
    } catch (const InputError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(why) != std::string::npos);
    }
  };
  SECTION("a flipped data byte fails the checksum") {
    std::vector<uint8_t> b = good;
    b[b.size() / 2] ^= 0x01;
    refused_because(b, "checksum mismatch");
  }
  SECTION("a truncated file is refused by its size before anything is read") {
    refused_because(std::vector<uint8_t>(good.begin(), good.end() - 9), "bytes, expected " + std::to_string(want));
    refused_because(std::vector<uint8_t>(good.begin(), good.begin() + 20), "it has 20 bytes");
  }
  SECTION("absurd dimensions in the header are refused before any allocation") {
    std::vector<uint8_t> b = good;
    const int64_t huge = int64_t(1) << 40;
    std::memcpy(b.data() + n_embd_offset(key), &huge, sizeof huge);
    refused_because(b, "n_embd is 1099511627776, expected 64");
  }
  SECTION("another key's entry is refused") {
    CalibrationCacheInputs other = in;  // the same description length, so the size matches
    other.text_xxh64 = "fedcba9876543210";
    const CalibrationCacheKey k2 = calibration_cache_key(other);
    CHECK(k2.key != key.key);
    write_bytes(path, good);
    CHECK_THROWS_WITH(read_calibration_cache(path, k2, shape), Catch::Contains("it holds key " + key.key));
  }
  SECTION("a non-finite value with a matching checksum is refused") {
    CalibrationData bad = data;
    bad.head_inputs(3, 7) = std::numeric_limits<float>::quiet_NaN();
    write_calibration_cache(path, key, shape, bad);
    CHECK_THROWS_WITH(read_calibration_cache(path, key, shape), Catch::Contains("head_inputs holds non-finite"));
  }
}

TEST_CASE("compress runs sharing a model and calibration settings calibrate once and write the same bytes",
          "[calibration_cache]") {
  const std::string dir = fresh_dir("calib-cache-runs");
  const std::string first = compress_cached(dir, "cache-first.rwkvlite", {kCalibrationBytes, "pass.0.divisor=8"});
  const nlohmann::json r1 = report_of(first)["calibration"];
  CHECK(r1["cache"] == "miss");
  REQUIRE(r1["key"].is_string());
  const std::string key = r1["key"];
  CHECK(std::filesystem::exists(dir + "/" + key + ".calib"));
  CHECK(std::filesystem::exists(dir + "/" + key + ".lock"));

  // Another pass setting: the same statistics.
  const std::string hit = compress_cached(dir, "cache-hit.rwkvlite", {kCalibrationBytes, "pass.0.divisor=4"});
  const nlohmann::json r2 = report_of(hit)["calibration"];
  CHECK(r2["cache"] == "hit");
  CHECK(r2["key"] == key);
  const std::string uncached = compress_cached("", "cache-off.rwkvlite", {kCalibrationBytes, "pass.0.divisor=4"});
  const nlohmann::json r3 = report_of(uncached)["calibration"];
  CHECK(r3["cache"] == "off");
  CHECK(r3["key"].is_null());
  CHECK(bytes_of(hit) == bytes_of(uncached));
  CHECK(report_of(hit)["provenance"] == report_of(uncached)["provenance"]);

  // Other calibration text: another key.
  const std::string other = compress_cached(dir, "cache-other.rwkvlite", {"calibration.bytes=6000", "pass.0.divisor=4"});
  const nlohmann::json r4 = report_of(other)["calibration"];
  CHECK(r4["cache"] == "miss");
  CHECK(r4["key"] != key);
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 4);

  // No pass needs calibration: the cache is not touched.
  const std::string dense = compress(tiny_model_path("5v2-730K", "FP32"), "dense-fp32.toml", "cache-none.rwkvlite", 2);
  CHECK(report_of(dense)["calibration"] == nlohmann::json({{"cache", "none"}, {"key", nullptr}, {"seconds", 0.0}}));

  // The dry run says whether the entry exists.
  CompressOptions dry;
  dry.model_path = tiny_model_path("5v2-730K", "FP32");
  dry.config_path = config("lowrank-aware.toml");
  dry.overrides = {kCalibrationBytes};
  dry.calibration_cache_dir = dir;
  const CompressPlanSummary s = plan_compress(dry, builtin_passes());
  CHECK(s.calibration_cache_path == dir + "/" + key + ".calib");
  CHECK(s.calibration_cache_hit);
  dry.overrides = {"calibration.bytes=7000"};
  CHECK_FALSE(plan_compress(dry, builtin_passes()).calibration_cache_hit);
}

TEST_CASE("a damaged calibration cache entry is one warning, recomputed and overwritten", "[calibration_cache]") {
  const std::string dir = fresh_dir("calib-cache-damaged");
  const std::string reference = compress_cached("", "damaged-ref.rwkvlite", {kCalibrationBytes});
  const std::string first = compress_cached(dir, "damaged-first.rwkvlite", {kCalibrationBytes});
  const std::string key = report_of(first)["calibration"]["key"];
  const std::string entry = dir + "/" + key + ".calib";
  const std::vector<uint8_t> good = bytes_of(entry);

  std::vector<std::vector<uint8_t>> damaged;
  damaged.push_back(good);
  damaged.back()[good.size() - 100] ^= 0x80;                                    // a flipped byte
  damaged.emplace_back(good.begin(), good.begin() + good.size() / 3);           // truncated
  damaged.push_back(good);
  const int64_t absurd = int64_t(1) << 50;                                      // absurd n_layer
  const uint64_t n_layer_at = 8 + 4 + 4 + 16 + 8 + (good[32] | good[33] << 8) + 2 * 8;
  std::memcpy(damaged.back().data() + n_layer_at, &absurd, sizeof absurd);
  damaged.emplace_back(std::vector<uint8_t>{'n', 'o', 't', ' ', 'a', ' ', 'c', 'a', 'c', 'h', 'e'});  // garbage
  for (size_t i = 0; i < damaged.size(); ++i) {
    INFO("damage " << i);
    write_bytes(entry, damaged[i]);
    CapturedLog log;
    const std::string out = compress_cached(dir, "damaged-" + std::to_string(i) + ".rwkvlite", {kCalibrationBytes});
    const std::vector<std::string> warnings = log.lines_with("ignoring the cache file");
    REQUIRE(warnings.size() == 1);
    INFO(warnings[0]);
    CHECK(log.lines_with("cache miss, computing").size() == 1);
    CHECK(report_of(out)["calibration"]["cache"] == "miss");
    CHECK(bytes_of(out) == bytes_of(reference));
    CHECK(bytes_of(entry) == good);  // overwritten with the recomputed entry
  }
}
