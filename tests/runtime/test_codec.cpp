// Row codecs: names, sizes, exact layouts, error bounds, fused kernels, determinism.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <random>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "runtime/format/codec.h"
#include "runtime/format/compact_format.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::format;

namespace {

std::vector<float> gaussian(size_t n, float sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> decode_all(const std::vector<uint8_t>& bytes, int64_t rows, int64_t cols, const EncodingSpec& spec) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const size_t rb = encoded_row_bytes(spec, cols);
  for (int64_t r = 0; r < rows; ++r) decode_row(bytes.data() + r * rb, cols, spec, out.data() + r * cols);
  return out;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float f32_at(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
uint16_t u16_at(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

const char* kFloatEncodings[] = {"f32",   "f16",   "bf16",   "i8",    "i4g32", "i4g64",  "i4g128", "b1",
                                 "i3g32", "i3g64", "i3g128", "i2g32", "i2g64", "i2g128"};

}  // namespace

TEST_CASE("encoding names parse and print", "[codec]") {
  for (const char* name : all_encoding_names()) {
    CAPTURE(name);
    CHECK(encoding_name(parse_encoding(name)) == name);
  }
  CHECK(all_encoding_names().size() == 16);
  CHECK(parse_encoding("i4g64") == EncodingSpec{Encoding::I4, {64}});
  CHECK(parse_encoding("i3g64") == EncodingSpec{Encoding::I3, {64}});
  CHECK(parse_encoding("i2g32") == EncodingSpec{Encoding::I2, {32}});
  for (const char* bad : {"", "F32", "i4", "i4g16", "i4g256", "q4_0", "fp16", "i8 ", "i3", "i3g16", "i2g256", "i1g32"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_encoding(bad), UsageError);
    CHECK_FALSE(try_parse_encoding(bad).has_value());
  }
  CHECK_THROWS_WITH(parse_encoding("q9"), Catch::Contains("unknown encoding 'q9'") && Catch::Contains("i4g128"));
  CHECK_THROWS_AS(encoding_name(Encoding::I4, {}), UsageError);
  CHECK_THROWS_AS(encoding_name(Encoding::I3, {48}), UsageError);
  CHECK_THROWS_AS(encoding_name(Encoding::I8, {32}), UsageError);
  CHECK_THROWS_AS(encoded_row_bytes(Encoding::F32, 0), UsageError);
}

TEST_CASE("encoded row sizes", "[codec]") {
  struct Row {
    const char* name;
    int64_t cols;
    size_t bytes;
  };
  const Row rows[] = {
      {"f32", 1000, 4000},   {"f16", 1000, 2000},   {"bf16", 1000, 2000},    {"i8", 1000, 1004},
      {"i4g32", 1000, 640},  {"i4g64", 1000, 576},  {"i4g128", 1000, 544},   {"b1", 1000, 129},
      {"i32", 1000, 4000},   {"u8", 1000, 1000},    {"i4g32", 1, 20},        {"i4g128", 129, 136},
      {"b1", 1, 5},          {"b1", 8, 5},          {"b1", 9, 6},            {"i8", 1, 5},
      {"f32", 4096, 16384},  {"i8", 4096, 4100},    {"i4g32", 4096, 2560},   {"i4g64", 4096, 2304},
      {"i4g128", 4096, 2176}, {"b1", 4096, 516},
      // i3: 3G/8 code bytes per group, i2: G/4; every group whole.
      {"i3g32", 1000, 512},  {"i3g64", 1000, 448},  {"i3g128", 1000, 416},   {"i3g128", 129, 104},
      {"i2g32", 1000, 384},  {"i2g64", 1000, 320},  {"i2g128", 1000, 288},   {"i2g32", 1, 12},
      {"i3g64", 4096, 1792}, {"i2g32", 4096, 1536},
  };
  for (const Row& r : rows) {
    CAPTURE(r.name, r.cols);
    CHECK(encoded_row_bytes(parse_encoding(r.name), r.cols) == r.bytes);
  }
}

TEST_CASE("hand-computed layouts match the documentation", "[codec]") {
  SECTION("i8: f32 scale then codes, round half away from zero") {
    const float row[] = {127.0f, -64.4f, 0.5f, -0.5f, 2.5f};
    const auto b = encode_rows(row, 1, 5, Encoding::I8);
    const std::vector<uint8_t> expected = {0x00, 0x00, 0x80, 0x3f, 0x7f, 0xc0, 0x01, 0xff, 0x03};
    CHECK(b == expected);
  }
  SECTION("i4g32: f16 scale rounded up, f16 min rounded down, low nibble first, zero padding") {
    const float row[] = {-1.0f, 0.0f, 2.0f};
    const auto b = encode_rows(row, 1, 3, Encoding::I4, {32});
    REQUIRE(b.size() == 20);
    // 3/15 = 0.2 is not an fp16; the nearest (0x3266 = 0.19995) is below, so the scale is 0x3267.
    std::vector<uint8_t> expected(20, 0);
    expected[0] = 0x67, expected[1] = 0x32;  // scale 0.2000732421875
    expected[2] = 0x00, expected[3] = 0xbc;  // min -1
    expected[4] = 0x50;                      // codes 0 (col 0, low nibble) and 5 (col 1, high nibble)
    expected[5] = 0x0f;                      // code 15 (col 2)
    CHECK(b == expected);
  }
  SECTION("i3g32: 7 levels, codes packed LSB first across byte boundaries") {
    const float row[] = {-1.0f, 0.0f, 2.0f};
    const auto b = encode_rows(row, 1, 3, Encoding::I3, {32});
    REQUIRE(b.size() == 16);
    // 3/7 rounds to the fp16 0x36db = 0.42847 < 3/7, so the scale is 0x36dc = 0.4287109375.
    std::vector<uint8_t> expected(16, 0);
    expected[0] = 0xdc, expected[1] = 0x36;
    expected[2] = 0x00, expected[3] = 0xbc;  // min -1
    // codes 0 (bits 0-2), 2 (bits 3-5), 7 (bits 6-8, straddling into byte 1)
    expected[4] = 0xd0;
    expected[5] = 0x01;
    CHECK(b == expected);
    std::vector<float> back(3);
    decode_row(b.data(), 3, Encoding::I3, {32}, back.data());
    CHECK(back[0] == -1.0f);
    CHECK(back[1] == -1.0f + 2 * 0.4287109375f);
    CHECK(back[2] == -1.0f + 7 * 0.4287109375f);
  }
  SECTION("i2g32: 3 levels, four codes per byte") {
    const float row[] = {-1.0f, 0.0f, 2.0f};
    const auto b = encode_rows(row, 1, 3, Encoding::I2, {32});
    REQUIRE(b.size() == 12);
    std::vector<uint8_t> expected(12, 0);
    expected[0] = 0x00, expected[1] = 0x3c;  // scale 1
    expected[2] = 0x00, expected[3] = 0xbc;  // min -1
    expected[4] = 0x34;                      // codes 0, 1, 3 in bits 0-1, 2-3, 4-5
    CHECK(b == expected);
  }
  SECTION("b1: f32 mean |w| then sign bits, LSB first, 1 = negative") {
    const float row[] = {1.0f, -2.0f, 0.0f, -3.0f, 5.0f};
    const auto b = encode_rows(row, 1, 5, Encoding::B1);
    const float scale = 2.2f;
    std::vector<uint8_t> expected(5);
    std::memcpy(expected.data(), &scale, 4);
    expected[4] = 0x0a;
    CHECK(b == expected);
  }
  SECTION("f16 and bf16 are little-endian patterns") {
    const float row[] = {1.0f, -2.0f};
    CHECK(encode_rows(row, 1, 2, Encoding::F16) == std::vector<uint8_t>{0x00, 0x3c, 0x00, 0xc0});
    CHECK(encode_rows(row, 1, 2, Encoding::BF16) == std::vector<uint8_t>{0x80, 0x3f, 0x00, 0xc0});
  }
}

TEST_CASE("f32 round trip is bit-exact", "[codec]") {
  auto v = gaussian(3 * 257, 1.0f, 1);
  v[0] = -0.0f;
  v[1] = 1e-40f;  // subnormal
  v[2] = std::numeric_limits<float>::max();
  const auto bytes = encode_rows(v.data(), 3, 257, Encoding::F32);
  const auto back = decode_all(bytes, 3, 257, {Encoding::F32, {}});
  for (size_t i = 0; i < v.size(); ++i) REQUIRE(bits_of(back[i]) == bits_of(v[i]));
}

TEST_CASE("f16 and bf16 decode every bit pattern exactly", "[codec]") {
  // All 65536 patterns as one row: the vectorised decoders must equal core/half.h bit for bit
  // (NaN payloads included), and dot_row must use the same values.
  std::vector<uint8_t> row(65536 * 2);
  for (uint32_t h = 0; h < 65536; ++h) row[2 * h] = h & 0xff, row[2 * h + 1] = h >> 8;
  std::vector<float> out(65536);
  decode_row(row.data(), 65536, Encoding::F16, {}, out.data());
  for (uint32_t h = 0; h < 65536; ++h) REQUIRE(bits_of(out[h]) == bits_of(fp16_to_float(static_cast<uint16_t>(h))));
  decode_row(row.data(), 65536, Encoding::BF16, {}, out.data());
  for (uint32_t h = 0; h < 65536; ++h) REQUIRE(bits_of(out[h]) == bits_of(bf16_to_float(static_cast<uint16_t>(h))));
}

TEST_CASE("f16 and bf16 round trips equal their round-to-nearest-even conversion", "[codec]") {
  auto v = gaussian(4 * 300, 0.5f, 2);
  v[5] = 65504.0f, v[6] = -65519.0f, v[7] = 1e-8f, v[8] = 3e-5f;  // max, rounds to max, underflow, subnormal
  for (Encoding e : {Encoding::F16, Encoding::BF16}) {
    const auto back = decode_all(encode_rows(v.data(), 4, 300, e), 4, 300, {e, {}});
    for (size_t i = 0; i < v.size(); ++i) {
      const float expected = e == Encoding::F16 ? fp16_to_float(float_to_fp16(v[i])) : bf16_to_float(float_to_bf16(v[i]));
      REQUIRE(bits_of(back[i]) == bits_of(expected));
    }
  }
}

TEST_CASE("i8 error is at most half a step per element", "[codec]") {
  const int64_t rows = 64, cols = 1000;
  auto v = gaussian(rows * cols, 0.02f, 3);
  v[17] = 0.9f;  // an outlier stretches row 0's scale
  std::fill(v.begin() + cols, v.begin() + 2 * cols, 0.0f);  // an all-zero row
  const auto bytes = encode_rows(v.data(), rows, cols, Encoding::I8);
  const auto back = decode_all(bytes, rows, cols, {Encoding::I8, {}});
  double worst_ratio = 0, sum_sq = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = f32_at(bytes.data() + r * encoded_row_bytes(Encoding::I8, cols));
    float absmax = 0;
    for (int64_t c = 0; c < cols; ++c) absmax = std::max(absmax, std::fabs(v[r * cols + c]));
    CHECK(scale == Approx(absmax / 127.0f).epsilon(1e-6));
    for (int64_t c = 0; c < cols; ++c) {
      const double err = std::fabs(static_cast<double>(back[r * cols + c]) - v[r * cols + c]);
      sum_sq += err * err;
      if (scale > 0) worst_ratio = std::max(worst_ratio, err / scale);
      // Half a step in exact arithmetic, plus the float rounding of the decoded product q * scale.
      REQUIRE(err <= scale / 2 + std::ldexp(1.0, -24) * (std::fabs(v[r * cols + c]) + scale));
    }
  }
  for (int64_t c = 0; c < cols; ++c) CHECK(back[cols + c] == 0.0f);
  std::cout << "i8 (N(0,0.02), 64x1000): max |err|/scale = " << worst_ratio
            << ", rms err = " << std::sqrt(sum_sq / (rows * cols)) << "\n";
}

TEST_CASE("group encodings (i4, i3, i2) err by at most half a step per element of each group", "[codec]") {
  for (Encoding encoding : {Encoding::I4, Encoding::I3, Encoding::I2}) {
  const int bits = group_code_bits(encoding);
  const int levels = (1 << bits) - 1;
  for (int32_t g : {32, 64, 128}) {
    for (int64_t cols : {int64_t{1000}, int64_t{4096}, int64_t{5}}) {
      CAPTURE(bits, g, cols);
      const int64_t rows = 16;
      auto v = gaussian(rows * cols, 0.02f, 4 + cols);
      v[3] = 0.5f;                                                 // outlier in group 0 of row 0
      std::fill(v.begin() + cols, v.begin() + 2 * cols, 0.125f);  // constant row: exact
      const EncodingSpec spec{encoding, {g}};
      const auto bytes = encode_rows(v.data(), rows, cols, spec);
      REQUIRE_FALSE(check_encoded_rows(bytes.data(), rows, cols, encoding, {g}).has_value());
      const auto back = decode_all(bytes, rows, cols, spec);
      const size_t rb = encoded_row_bytes(spec, cols);
      double worst_ratio = 0, sum_sq = 0;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          const uint8_t* group = bytes.data() + r * rb + (c / g) * (4 + g * bits / 8);
          const float scale = fp16_to_float(u16_at(group)), min = fp16_to_float(u16_at(group + 2));
          const float w = v[r * cols + c];
          REQUIRE(min <= w);
          const double err = std::fabs(static_cast<double>(back[r * cols + c]) - w);
          sum_sq += err * err;
          if (scale > 0) worst_ratio = std::max(worst_ratio, err / scale);
          // Half a step, plus the float rounding of min + q * scale (two roundings of a value <= ~|w|+scale).
          REQUIRE(err <= scale / 2 + 2 * std::ldexp(1.0, -24) * (std::fabs(w) + (levels + 1) * scale));
        }
      }
      for (int64_t c = 0; c < cols; ++c) CHECK(back[cols + c] == 0.125f);
      if (cols == 4096) {
        std::cout << "i" << bits << "g" << g << " (N(0,0.02), 16x4096): max |err|/scale = " << worst_ratio
                  << ", rms err = " << std::sqrt(sum_sq / (rows * cols)) << ", " << 8.0 * rb / cols << " bits/weight\n";
      }
    }
  }
  }
}

TEST_CASE("i3 and i2 padding codes of a partial last group must be zero", "[codec]") {
  for (const char* name : {"i3g32", "i2g64"}) {
    CAPTURE(name);
    const EncodingSpec spec = parse_encoding(name);
    const auto v = gaussian(5, 0.1f, 9);
    auto bytes = encode_rows(v.data(), 1, 5, spec);
    REQUIRE_FALSE(check_encoded_rows(bytes.data(), 1, 5, spec.encoding, spec.params).has_value());
    bytes.back() = 0x80;  // a bit of the last (unused) code
    const auto problem = check_encoded_rows(bytes.data(), 1, 5, spec.encoding, spec.params);
    REQUIRE(problem.has_value());
    CHECK_THAT(*problem, Catch::Contains("non-zero padding code in row 0"));
  }
}

TEST_CASE("b1 keeps every sign and the row's mean magnitude", "[codec]") {
  const int64_t rows = 5, cols = 203;  // 203 % 8 != 0: padding bits
  auto v = gaussian(rows * cols, 1.0f, 5);
  v[7] = 0.0f;
  const auto bytes = encode_rows(v.data(), rows, cols, Encoding::B1);
  REQUIRE_FALSE(check_encoded_rows(bytes.data(), rows, cols, Encoding::B1, {}).has_value());
  const auto back = decode_all(bytes, rows, cols, {Encoding::B1, {}});
  for (int64_t r = 0; r < rows; ++r) {
    double mean_abs = 0;
    for (int64_t c = 0; c < cols; ++c) mean_abs += std::fabs(v[r * cols + c]);
    mean_abs /= cols;
    for (int64_t c = 0; c < cols; ++c) {
      const float w = v[r * cols + c], d = back[r * cols + c];
      REQUIRE(std::fabs(d) == static_cast<float>(mean_abs));
      REQUIRE(std::signbit(d) == (w < 0));
    }
  }
  CHECK(back[7] > 0);  // zero encodes as +scale
}

TEST_CASE("integer encodings store values exactly", "[codec]") {
  const std::vector<int32_t> ids = {0, 1, -1, 2147483647, -2147483647 - 1, 16777217, 42};
  const auto bytes = encode_rows_i32(ids.data(), 1, 7);
  REQUIRE(bytes.size() == 28);
  std::vector<int32_t> back(7);
  decode_row_i32(bytes.data(), 7, back.data());
  CHECK(back == ids);
  const float small[] = {0.0f, -5.0f, 16777216.0f};
  std::vector<float> fb(3);
  decode_row(encode_rows(small, 1, 3, Encoding::I32).data(), 3, Encoding::I32, {}, fb.data());
  CHECK(fb == std::vector<float>(small, small + 3));
  const float bytes_in[] = {0.0f, 255.0f, 7.0f};
  const auto u8 = encode_rows(bytes_in, 1, 3, Encoding::U8);
  CHECK(u8 == std::vector<uint8_t>{0, 255, 7});
  for (float bad : {0.5f, 3e9f}) CHECK_THROWS_AS(encode_rows(&bad, 1, 1, Encoding::I32), UsageError);
  for (float bad : {256.0f, -1.0f, 0.5f}) CHECK_THROWS_AS(encode_rows(&bad, 1, 1, Encoding::U8), UsageError);
}

TEST_CASE("values an encoding cannot hold are rejected", "[codec]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const char* name : all_encoding_names()) {
    const EncodingSpec spec = parse_encoding(name);
    for (float bad : {nan, inf, -inf}) {
      const float row[] = {1.0f, bad, 2.0f};
      CAPTURE(name, bad);
      CHECK_THROWS_AS(encode_rows(row, 1, 3, spec), InputError);
      CHECK_THROWS_WITH(encode_rows(row, 1, 3, spec), Catch::Contains("row 0, column 1"));
    }
  }
  const float big[] = {70000.0f};
  CHECK_THROWS_AS(encode_rows(big, 1, 1, Encoding::F16), UsageError);
  CHECK_THROWS_AS(encode_rows(big, 1, 1, Encoding::I4, {32}), UsageError);
  const float huge[] = {3.4e38f};
  CHECK_THROWS_AS(encode_rows(huge, 1, 1, Encoding::BF16), UsageError);
  CHECK_NOTHROW(encode_rows(huge, 1, 1, Encoding::I8));
  const float edge[] = {65504.0f, -65504.0f};
  const auto e = encode_rows(edge, 1, 2, Encoding::I4, {32});
  std::vector<float> back(2);
  decode_row(e.data(), 2, Encoding::I4, {32}, back.data());
  // The scale is rounded up (8736 instead of 8733.9), so the top code lands at 65536: still
  // within half a step, which is the contract.
  CHECK(back[1] == -65504.0f);
  CHECK(std::fabs(back[0] - 65504.0f) <= 8736.0f / 2);
}

TEST_CASE("dot_row and axpy_row agree with decode then compute", "[codec]") {
  std::vector<double> worst(std::size(kFloatEncodings), 0.0);
  for (size_t e = 0; e < std::size(kFloatEncodings); ++e) {
    const EncodingSpec spec = parse_encoding(kFloatEncodings[e]);
    for (int64_t cols : {1, 7, 8, 33, 257, 1000, 4096}) {
      const int64_t rows = 4;
      const auto w = gaussian(rows * cols, 0.05f, 10 + cols);
      const auto x = gaussian(cols, 1.0f, 20 + cols);
      const auto y0 = gaussian(cols, 1.0f, 30 + cols);
      const auto bytes = encode_rows(w.data(), rows, cols, spec);
      const auto dec = decode_all(bytes, rows, cols, spec);
      const size_t rb = encoded_row_bytes(spec, cols);
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = bytes.data() + r * rb;
        double ref = 0, mag = 0;
        for (int64_t c = 0; c < cols; ++c) {
          ref += static_cast<double>(dec[r * cols + c]) * x[c];
          mag += std::fabs(static_cast<double>(dec[r * cols + c]) * x[c]);
        }
        const double got = dot_row(row, x.data(), cols, spec);
        CAPTURE(kFloatEncodings[e], cols, r, got, ref);
        // Relative to sum |w_i x_i|: the scale at which float summation error lives, so the bound
        // does not blow up when the dot product happens to be near zero.
        REQUIRE(std::fabs(got - ref) <= 1e-5 * mag + 1e-30);
        worst[e] = std::max(worst[e], std::fabs(got - ref) / std::max(mag, 1e-30));

        const float a = 0.75f;
        std::vector<float> y = y0;
        axpy_row(a, row, cols, spec, y.data());
        for (int64_t c = 0; c < cols; ++c) {
          const double expected = y0[c] + static_cast<double>(a) * dec[r * cols + c];
          REQUIRE(std::fabs(y[c] - expected) <= 1e-5 * (std::fabs(y0[c]) + std::fabs(a * dec[r * cols + c])) + 1e-30);
        }
      }
    }
  }
  for (size_t e = 0; e < std::size(kFloatEncodings); ++e) {
    std::cout << "dot_row " << kFloatEncodings[e] << ": max |dot - ref| / sum|w x| = " << worst[e] << "\n";
  }
}

TEST_CASE("the vector kernels give the portable results bit for bit", "[codec]") {
  // The vector kernels (AVX2 + F16C) must change speed, never numbers: a model run on a CPU
  // without them gives the same logits.
  bool any_vectorized = false;
  for (const char* name : kFloatEncodings) {
    const EncodingSpec spec = parse_encoding(name);
    // Widths with and without a tail of fewer than 8 columns, and partial i4 groups.
    for (int64_t cols : {8, 13, 64, 100, 256, 768, 1000, 2688}) {
      for (int64_t rows : {1, 2, 3, 4, 5, 7, 9}) {
        CAPTURE(name, cols, rows);
        auto w = gaussian(rows * cols, 0.05f, 100 + cols + rows);
        w[0] = 0.0f;  // exact zeros and a large value exercise the i8 and i4 scales
        w[static_cast<size_t>(rows * cols / 2)] = 0.9f;
        const auto x = gaussian(cols, 1.0f, 200 + cols);
        const auto bytes = encode_rows(w.data(), rows, cols, spec);
        const size_t rb = encoded_row_bytes(spec, cols);
        std::vector<float> fast(static_cast<size_t>(rows)), slow(static_cast<size_t>(rows));
        dot_rows(bytes.data(), rb, rows, x.data(), cols, spec.encoding, spec.params, fast.data());
        dot_rows_portable(bytes.data(), rb, rows, x.data(), cols, spec.encoding, spec.params, slow.data());
        // The same rows gathered in reverse order.
        std::vector<const uint8_t*> ptrs;
        for (int64_t r = rows; r-- > 0;) ptrs.push_back(bytes.data() + r * rb);
        std::vector<float> gathered(static_cast<size_t>(rows));
        dot_rows_gathered(ptrs.data(), rows, x.data(), cols, spec.encoding, spec.params, gathered.data());
        for (int64_t r = 0; r < rows; ++r) REQUIRE(bits_of(gathered[rows - 1 - r]) == bits_of(slow[r]));
        // Sequence mode: three inputs at once, the middle one being x.
        const int64_t n_in = 3;
        std::vector<float> xs = gaussian(n_in * cols, 1.0f, 300 + cols);
        std::copy(x.begin(), x.end(), xs.begin() + cols);
        std::vector<float> batch(static_cast<size_t>(n_in * rows));
        dot_rows_batch(bytes.data(), rb, rows, xs.data(), n_in, cols, spec.encoding, spec.params, batch.data(), rows);
        for (int64_t t = 0; t < n_in; ++t) {
          for (int64_t r = 0; r < rows; ++r) {
            CAPTURE(t, r);
            REQUIRE(bits_of(batch[t * rows + r]) ==
                    bits_of(dot_row_portable(bytes.data() + r * rb, xs.data() + t * cols, cols, spec.encoding, spec.params)));
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          CAPTURE(r, fast[r], slow[r]);
          const uint8_t* row = bytes.data() + r * rb;
          REQUIRE(bits_of(fast[r]) == bits_of(slow[r]));
          REQUIRE(bits_of(dot_row(row, x.data(), cols, spec)) == bits_of(slow[r]));
          REQUIRE(bits_of(dot_row_portable(row, x.data(), cols, spec.encoding, spec.params)) == bits_of(slow[r]));
          std::vector<float> y_fast = x, y_slow = x;
          axpy_row(-0.37f, row, cols, spec, y_fast.data());
          axpy_row_portable(-0.37f, row, cols, spec.encoding, spec.params, y_slow.data());
          for (int64_t c = 0; c < cols; ++c) REQUIRE(bits_of(y_fast[c]) == bits_of(y_slow[c]));
        }
        any_vectorized = any_vectorized || dot_rows_vectorized(spec.encoding, cols, spec.params);
      }
    }
  }
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) {
    CHECK(any_vectorized);
    CHECK(dot_rows_vectorized(Encoding::F16, 768, {}));
    CHECK(dot_rows_vectorized(Encoding::I4, 768, {64}));
    CHECK_FALSE(dot_rows_vectorized(Encoding::I4, 100, {64}));  // partial last group: row by row
    CHECK(dot_rows_vectorized(Encoding::I3, 768, {64}));
    CHECK(dot_rows_vectorized(Encoding::I2, 768, {32}));
    CHECK_FALSE(dot_rows_vectorized(Encoding::I3, 100, {64}));
  } else {
    WARN("this CPU has no AVX2 + F16C: only the portable path was compared with itself");
  }
#endif
}

TEST_CASE("encoding is deterministic and pinned", "[codec]") {
  // Inputs computed with exact integer arithmetic (no libm), so this golden hash checks the
  // encoders' rounding rules on every platform, not the test's random generator.
  const int64_t rows = 8, cols = 300;
  std::vector<float> v(rows * cols);
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(static_cast<int64_t>(s >> 40) % 20001 - 10000) / 65536.0f;
  }
  std::string report;
  for (const char* name : kFloatEncodings) {
    const auto a = encode_rows(v.data(), rows, cols, parse_encoding(name));
    const auto b = encode_rows(v.data(), rows, cols, parse_encoding(name));
    REQUIRE(a == b);
    report += std::string(name) + "=" + checksums_to_hex({xxh64(a.data(), a.size())}) + " ";
  }
  CHECK(report ==
        "f32=b1cd2ebc61383d29 f16=39f1d67d2f0ed64a bf16=87acbe74af076aa8 i8=182ba123e9fe4c27 "
        "i4g32=aac990677c40a768 i4g64=422e9afe401da7bd i4g128=00de560488378cc2 b1=5dc0a11cadf887ff "
        "i3g32=2c6f4f2c0333f512 i3g64=d4e83b63f3bfae50 i3g128=9e5c92120971a972 i2g32=f50c5c3afd5604a1 "
        "i2g64=6c857ff22ac8a9f6 i2g128=f8e2a7aecc957e3b ");
}

TEST_CASE("kernel throughput", "[.bench]") {
  // A matrix larger than the caches, streamed as in single-token inference: GB/s of stored
  // bytes for the portable and the vector matrix-vector kernels, and Gweights/s for axpy.
  // Informational (hidden tag); the benchmark suite measures whole-model throughput.
  const int64_t rows = 8192, cols = 2048;
  const auto w = gaussian(rows * cols, 0.02f, 7);
  const auto x = gaussian(cols, 1.0f, 8);
  for (const char* name : kFloatEncodings) {
    const EncodingSpec spec = parse_encoding(name);
    const auto bytes = encode_rows(w.data(), rows, cols, spec);
    const size_t rb = encoded_row_bytes(spec, cols);
    std::vector<float> y(cols, 0.0f), out(rows);
    float sink = 0;
    auto seconds = [](auto t0, auto t1) { return std::chrono::duration<double>(t1 - t0).count(); };
    const int reps = 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int rep = 0; rep < reps; ++rep) {
      dot_rows_portable(bytes.data(), rb, rows, x.data(), cols, spec.encoding, spec.params, out.data());
      sink += out[0];
    }
    const auto t1 = std::chrono::steady_clock::now();
    for (int rep = 0; rep < reps; ++rep) {
      dot_rows(bytes.data(), rb, rows, x.data(), cols, spec.encoding, spec.params, out.data());
      sink += out[0];
    }
    const auto t2 = std::chrono::steady_clock::now();
    for (int rep = 0; rep < reps; ++rep) {
      for (int64_t r = 0; r < rows; ++r) axpy_row(x[r % cols], bytes.data() + r * rb, cols, spec, y.data());
    }
    const auto t3 = std::chrono::steady_clock::now();
    const double gb = reps * static_cast<double>(bytes.size()) / 1e9, n = reps * static_cast<double>(rows * cols);
    std::cout << name << ": matvec portable " << gb / seconds(t0, t1) << " GB/s, vector " << gb / seconds(t1, t2)
              << " GB/s; axpy " << n / seconds(t2, t3) / 1e9 << " Gweights/s (" << sink + y[0] << ")\n";
  }
}
