// Compact file format: writer, reader and validator, including corruption and hostile input.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/format/codec.h"
#include "runtime/format/compact_format.h"
#include "runtime/format/compact_reader.h"
#include "runtime/format/compact_writer.h"
#include "runtime/format/model_json.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::format;
using nlohmann::json;

namespace {

std::string scratch(const std::string& name) { return test::scratch_dir() + "/" + name; }

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Overwrites one byte in place (no truncation: cheap enough for a loop over every byte).
void poke(const std::string& path, size_t pos, uint8_t value) {
  std::fstream io(path, std::ios::binary | std::ios::in | std::ios::out);
  io.seekp(static_cast<std::streamoff>(pos));
  io.put(static_cast<char>(value));
}

// Replaces a file's contents. Overwrites then shrinks instead of truncating first: ext4 flushes
// a file truncated to zero when it is closed, which made the loops below a hundred times slower.
void spit(const std::string& path, const std::vector<uint8_t>& bytes) {
  {
    std::ofstream create(path, std::ios::binary | std::ios::app);  // exists afterwards, contents kept
  }
  {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::resize_file(path, bytes.size());
}

std::vector<float> gaussian(size_t n, float sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// The inputs of the small test file, by tensor name.
struct Input {
  const char* encoding;
  std::vector<int64_t> shape;
  uint64_t rows_per_block;
  std::vector<float> values;
};

std::map<std::string, Input> small_inputs() {
  std::map<std::string, Input> in;
  in["emb.weight"] = {"f32", {6, 5}, kChecksumEveryRow, gaussian(30, 1.0f, 1)};
  in["blocks.0.ffn.key.weight"] = {"i8", {7, 9}, 3, gaussian(63, 0.1f, 2)};
  in["blocks.0.ffn.value.weight"] = {"i4g32", {4, 40}, kChecksumEveryRow, gaussian(160, 0.1f, 3)};
  in["predictor.0.sign"] = {"b1", {3, 11}, kChecksumDefaultBlocks, gaussian(33, 1.0f, 4)};
  in["blocks.0.att.time_mix"] = {"f16", {2, 3, 4}, 2, gaussian(24, 0.5f, 5)};
  in["ln_out.scale"] = {"bf16", {}, kChecksumDefaultBlocks, {1.5f}};
  in["head.cluster_ids"] = {"i32", {10}, kChecksumDefaultBlocks, {0, 1, 1, 2, 0, 3, 3, 2, 1, 0}};
  in["head.flags"] = {"u8", {5}, kChecksumDefaultBlocks, {0, 1, 255, 7, 8}};
  return in;
}

// Tensor order in the file: not alphabetical, to check the header keeps the writer's order.
const char* kOrder[] = {"emb.weight",       "blocks.0.ffn.key.weight", "blocks.0.ffn.value.weight", "predictor.0.sign",
                        "blocks.0.att.time_mix", "ln_out.scale",        "head.cluster_ids",          "head.flags"};

const json kArch = {{"version", "v7"}};
const json kDims = {{"n_layer", 1}, {"n_embd", 5}, {"n_vocab", 6}};
const json kMeta = {{"passes", json::array({{{"name", "quantize"}, {"bits", 4}}})},
                    {"provenance", {{"input_xxh64", "0123456789abcdef"}, {"seed", 42}, {"tool_version", "0.1.0"}}}};

void write_small(const std::string& path) {
  const auto inputs = small_inputs();
  CompactWriter w(path);
  for (const char* name : kOrder) {
    const Input& in = inputs.at(name);
    w.add_tensor(name, parse_encoding(in.encoding), in.shape, in.values.data(), in.rows_per_block);
  }
  w.finish(kArch, kDims, kMeta);
}

// A file split into its parts, for rebuilding it with one deliberate problem.
struct Parts {
  Preamble preamble;
  json header;
  std::vector<uint8_t> data;
};

Parts split(const std::vector<uint8_t>& bytes) {
  Parts parts;
  parts.preamble = decode_preamble(bytes.data());
  const auto h = bytes.begin() + static_cast<std::ptrdiff_t>(parts.preamble.header_offset);
  parts.header = json::parse(h, h + static_cast<std::ptrdiff_t>(parts.preamble.header_size));
  parts.data.assign(bytes.begin() + 64, bytes.begin() + 64 + static_cast<std::ptrdiff_t>(parts.preamble.data_size));
  return parts;
}

// Preamble consistent with `header_text` and `data` (checksum included), then `tweak`ed.
std::vector<uint8_t> assemble(const std::string& header_text, const std::vector<uint8_t>& data, uint16_t minor = 0,
                              const std::function<void(Preamble&)>& tweak = {}) {
  Preamble p;
  p.minor = minor;
  p.data_size = data.size();
  p.header_offset = 64 + data.size();
  p.header_size = header_text.size();
  p.file_size = p.header_offset + p.header_size;
  p.header_xxh64 = xxh64(header_text.data(), header_text.size());
  if (tweak) tweak(p);
  std::vector<uint8_t> out(64);
  encode_preamble(p, out.data());
  out.insert(out.end(), data.begin(), data.end());
  out.insert(out.end(), header_text.begin(), header_text.end());
  return out;
}

// Recomputes every tensor's block checksums from `data` (after a deliberate data change).
void rehash(json& header, const std::vector<uint8_t>& data) {
  for (json& t : header["tensors"]) {
    const uint64_t off = t["offset"], rb = t["row_bytes"], rpb = t["rows_per_block"], nbytes = t["nbytes"];
    std::vector<uint64_t> sums;
    for (uint64_t b = 0; b * rpb * rb < nbytes; ++b) {
      const uint64_t begin = b * rpb * rb, n = std::min(rpb * rb, nbytes - begin);
      sums.push_back(xxh64(data.data() + off + begin, n));
    }
    t["block_xxh64"] = checksums_to_hex(sums);
  }
}

std::string open_error(const std::string& path) {
  try {
    CompactFile::open(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("round trip of every encoding through a file", "[format]") {
  const std::string path = scratch("small.rwkvlite");
  write_small(path);
  const CompactFile f = CompactFile::open(path);
  CHECK(f.major_version() == 1);
  CHECK(f.minor_version() == 0);
  CHECK(f.arch() == kArch);
  CHECK(f.dims() == kDims);
  CHECK(f.metadata() == kMeta);
  REQUIRE(f.tensors().size() == std::size(kOrder));
  for (size_t i = 0; i < std::size(kOrder); ++i) CHECK(f.tensors()[i].name == kOrder[i]);
  CHECK(f.verify().empty());

  const auto inputs = small_inputs();
  for (const auto& [name, in] : inputs) {
    CAPTURE(name);
    const TensorInfo& t = f.tensor(name);
    const EncodingSpec spec = parse_encoding(in.encoding);
    CHECK(t.encoding == spec);
    CHECK(t.shape == in.shape);
    CHECK(t.offset % 64 == 0);
    CHECK(t.nbytes == static_cast<uint64_t>(t.rows) * t.row_bytes);
    const auto expected_bytes = encode_rows(in.values.data(), t.rows, t.cols, spec);
    CHECK(f.read_tensor(name) == expected_bytes);
    const Tensor decoded = f.decode_tensor(name);
    CHECK(decoded.shape == in.shape);
    std::vector<float> expected(in.values.size());
    for (int64_t r = 0; r < t.rows; ++r) {
      decode_row(expected_bytes.data() + r * t.row_bytes, t.cols, spec, expected.data() + r * t.cols);
    }
    CHECK(decoded.data == expected);
  }
  // f32 is bit-exact, integer tables exact.
  CHECK(f.decode_tensor("emb.weight").data == inputs.at("emb.weight").values);
  CHECK(f.read_i32_tensor("head.cluster_ids") == std::vector<int32_t>{0, 1, 1, 2, 0, 3, 3, 2, 1, 0});
  CHECK(f.read_tensor("head.flags") == std::vector<uint8_t>{0, 1, 255, 7, 8});
  CHECK_THROWS_AS(f.read_i32_tensor("head.flags"), InputError);
  // Rank 0 is one row of one column; rank 3 folds the leading dims into rows.
  CHECK(f.tensor("ln_out.scale").rows == 1);
  CHECK(f.tensor("blocks.0.att.time_mix").rows == 6);
  CHECK(f.tensor("blocks.0.att.time_mix").cols == 4);
  // Checksum granularity as requested: per row, 3 rows, clamped default.
  CHECK(f.tensor("emb.weight").block_count() == 6);
  CHECK(f.tensor("blocks.0.ffn.key.weight").block_count() == 3);
  CHECK(f.tensor("predictor.0.sign").rows_per_block == 3);
  CHECK_THROWS_WITH(f.tensor("nope"), Catch::Contains("has no tensor 'nope'"));
  CHECK(f.find("nope") == nullptr);
}

TEST_CASE("identical content gives identical bytes", "[format]") {
  write_small(scratch("a.rwkvlite"));
  write_small(scratch("b.rwkvlite"));
  const auto a = slurp(scratch("a.rwkvlite")), b = slurp(scratch("b.rwkvlite"));
  CHECK(a.size() > 64);
  CHECK(a == b);
}

TEST_CASE("read_rows reads and verifies exactly the covering blocks", "[format]") {
  const std::string path = scratch("rows.rwkvlite");
  write_small(path);
  CompactFile f = CompactFile::open(path);
  const ReadStats at_open = f.read_stats();
  CHECK(at_open.header_bytes == slurp(path).size() - f.preamble().data_size);  // preamble + header, once
  CHECK(at_open.data_bytes == 0);

  const auto expect_read = [&](const std::string& name, int64_t begin, int64_t count, uint64_t rows_read,
                               uint64_t blocks) {
    CAPTURE(name, begin, count);
    const TensorInfo& t = f.tensor(name);
    const auto all = f.read_tensor(name);
    f.reset_read_stats();
    const auto got = f.read_rows(name, begin, count);
    CHECK(std::equal(got.begin(), got.end(), all.begin() + begin * static_cast<int64_t>(t.row_bytes)));
    const ReadStats s = f.read_stats();
    CHECK(s.data_bytes == rows_read * t.row_bytes);
    CHECK(s.blocks_verified == blocks);
    CHECK(s.reads == 1);
    CHECK(s.header_bytes == 0);
  };
  // One checksum per row: a single neuron costs exactly its row.
  expect_read("emb.weight", 4, 1, 1, 1);
  expect_read("emb.weight", 1, 3, 3, 3);
  expect_read("blocks.0.ffn.value.weight", 3, 1, 1, 1);
  // Blocks of 3 rows over 7 rows: [0..2] [3..5] [6].
  expect_read("blocks.0.ffn.key.weight", 4, 1, 3, 1);
  expect_read("blocks.0.ffn.key.weight", 2, 3, 6, 2);
  expect_read("blocks.0.ffn.key.weight", 6, 1, 1, 1);
  expect_read("blocks.0.ffn.key.weight", 0, 7, 7, 3);

  std::vector<uint8_t> dst(100);
  CHECK_THROWS_AS(f.read_rows("emb.weight", 5, 2, dst.data()), UsageError);
  CHECK_THROWS_AS(f.read_rows("emb.weight", -1, 1, dst.data()), UsageError);
  f.reset_read_stats();
  f.read_rows("emb.weight", 6, 0, dst.data());
  CHECK(f.read_stats().data_bytes == 0);
}

TEST_CASE("default checksum blocks are about 256 KiB", "[format]") {
  const std::string path = scratch("blocks.rwkvlite");
  const auto w = gaussian(1000 * 200, 1.0f, 9);
  {
    CompactWriter writer(path);
    writer.add_tensor("big", Encoding::F32, {}, {1000, 200}, w.data(), kChecksumDefaultBlocks);
    writer.finish(json::object(), json::object(), json::object());
  }
  CompactFile f = CompactFile::open(path);
  const TensorInfo& t = f.tensor("big");
  CHECK(t.rows_per_block == 262144 / 800);  // 327 rows of 800 bytes
  CHECK(t.block_count() == 4);
  f.reset_read_stats();
  std::vector<uint8_t> row(800);
  f.read_rows("big", 500, 1, row.data());
  CHECK(f.read_stats().data_bytes == 327 * 800);  // the whole covering block, nothing more
  float first;
  std::memcpy(&first, row.data(), 4);
  CHECK(first == w[500 * 200]);
  CHECK(f.verify().empty());
}

TEST_CASE("every single-byte corruption is detected", "[format]") {
  const std::string path = scratch("flip.rwkvlite");
  write_small(path);
  const auto original = slurp(path);
  const Preamble p = decode_preamble(original.data());
  std::vector<TensorInfo> infos = CompactFile::open(path).tensors();
  size_t at_open = 0, in_tensors = 0, in_padding = 0;

  for (uint8_t mask : {uint8_t{0xff}, uint8_t{0x01}}) {
    for (size_t pos = 0; pos < original.size(); ++pos) {
      CAPTURE(pos, int{mask});
      poke(path, pos, original[pos] ^ mask);
      struct Restore {  // put the byte back however this iteration ends
        const std::string& path;
        size_t pos;
        uint8_t value;
        ~Restore() { poke(path, pos, value); }
      } restore{path, pos, original[pos]};
      if (pos < 64 || pos >= p.header_offset) {
        REQUIRE_THROWS_AS(CompactFile::open(path), InputError);
        ++at_open;
        continue;
      }
      const CompactFile f = CompactFile::open(path);  // data is checked lazily
      const auto problems = f.verify();
      REQUIRE(problems.size() >= 1);
      const uint64_t d = pos - 64;
      const auto hit = std::find_if(infos.begin(), infos.end(),
                                    [&](const TensorInfo& t) { return d >= t.offset && d < t.offset + t.nbytes; });
      if (hit == infos.end()) {
        REQUIRE(problems[0].find("padding") != std::string::npos);
        for (const auto& t : infos) REQUIRE_NOTHROW(f.read_tensor(t.name));
        ++in_padding;
        continue;
      }
      const TensorInfo& t = *hit;
      const uint64_t row = (d - t.offset) / t.row_bytes, block = row / t.rows_per_block;
      const std::string where = "checksum block " + std::to_string(block);
      REQUIRE(std::any_of(problems.begin(), problems.end(), [&](const std::string& s) {
        return s.find("'" + t.name + "'") != std::string::npos && s.find(where) != std::string::npos;
      }));
      REQUIRE_THROWS_WITH(f.read_tensor(t.name), Catch::Contains("'" + t.name + "'") && Catch::Contains(where));
      std::vector<uint8_t> dst(t.row_bytes);
      REQUIRE_THROWS_WITH(f.read_rows(t.name, static_cast<int64_t>(row), 1, dst.data()), Catch::Contains(where));
      // Rows in other blocks of the same tensor, and other tensors, still read fine.
      if (t.block_count() > 1) {
        const uint64_t other = ((block + 1) % t.block_count()) * t.rows_per_block;
        REQUIRE_NOTHROW(f.read_rows(t.name, static_cast<int64_t>(other), 1, dst.data()));
      }
      for (const auto& o : infos) {
        if (o.name != t.name) REQUIRE_NOTHROW(f.read_tensor(o.name));
      }
      ++in_tensors;
    }
  }
  std::cout << "byte flips over a " << original.size() << "-byte file (x2 masks): " << at_open << " rejected at open, "
            << in_tensors << " in tensor data (verify + read), " << in_padding << " in padding (verify)\n";
  CHECK(in_padding > 0);
  CHECK(in_tensors > 0);
}

TEST_CASE("every truncation is rejected at open, as is extra data", "[format]") {
  const std::string path = scratch("trunc.rwkvlite");
  write_small(path);
  const auto original = slurp(path);
  const std::string cut = scratch("cut.rwkvlite");
  spit(cut, original);
  for (size_t len = original.size(); len-- > 0;) {  // shrink one byte at a time
    CAPTURE(len);
    std::filesystem::resize_file(cut, len);
    const std::string message = open_error(cut);
    REQUIRE(!message.empty());
    if (len >= 8) REQUIRE(message.find("truncated") != std::string::npos);
  }
  auto longer = original;
  longer.push_back(0);
  spit(cut, longer);
  CHECK_THAT(open_error(cut), Catch::Contains("more than the") && Catch::Contains("preamble records"));
}

TEST_CASE("hostile headers are rejected with one clear message", "[format]") {
  const std::string src = scratch("valid.rwkvlite");
  write_small(src);
  const Parts valid = split(slurp(src));
  const std::string path = scratch("hostile.rwkvlite");

  struct Case {
    const char* what;
    std::function<void(json&, std::vector<uint8_t>&)> mutate;
    const char* fragment;
  };
  const Case cases[] = {
      {"huge shape", [](json& h, auto&) { h["tensors"][0]["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40}; },
       "more than 2^62 elements"},
      {"zero dimension", [](json& h, auto&) { h["tensors"][0]["shape"] = {6, 0}; }, "zero dimension"},
      {"negative dimension", [](json& h, auto&) { h["tensors"][0]["shape"] = {-6, 5}; }, "dimensions are not all integers"},
      {"fractional dimension", [](json& h, auto&) { h["tensors"][0]["shape"] = {6.0, 5}; }, "dimensions are not all integers"},
      {"rank 9", [](json& h, auto&) { h["tensors"][0]["shape"] = json::array({1, 1, 1, 1, 1, 1, 1, 6, 5}); }, "rank 9"},
      {"overlapping tensors", [](json& h, auto&) { h["tensors"][1]["offset"] = 0; }, "overlap"},
      {"misaligned offset", [](json& h, auto&) { h["tensors"][1]["offset"] = h["tensors"][1]["offset"].get<uint64_t>() + 8; },
       "not a multiple of 64"},
      {"offset out of bounds", [](json& h, auto& d) { h["tensors"][7]["offset"] = d.size(); }, "of the data section"},
      {"nbytes mismatch", [](json& h, auto&) { h["tensors"][0]["nbytes"] = 128; }, "has nbytes 128 but 6 rows x 20 bytes = 120"},
      {"row_bytes mismatch", [](json& h, auto&) { h["tensors"][0]["row_bytes"] = 24; },
       "has row_bytes 24 but f32 rows of 5 columns take 20"},
      {"unknown encoding", [](json& h, auto&) { h["tensors"][0]["encoding"] = "q9"; }, "unknown encoding 'q9'"},
      {"duplicate names", [](json& h, auto&) { h["tensors"][1]["name"] = "emb.weight"; }, "appears more than once"},
      {"invalid name", [](json& h, auto&) { h["tensors"][1]["name"] = "a b"; }, "invalid name"},
      {"too few checksums",
       [](json& h, auto&) {
         const std::string s = h["tensors"][0]["block_xxh64"];
         h["tensors"][0]["block_xxh64"] = s.substr(16);
       },
       "6 blocks need 96 lower-case hex digits"},
      {"upper-case checksum",
       [](json& h, auto&) {
         std::string s = h["tensors"][0]["block_xxh64"];
         std::transform(s.begin(), s.end(), s.begin(), [](char c) { return c == 'a' ? 'A' : c; });
         s[0] = 'A';
         h["tensors"][0]["block_xxh64"] = s;
       },
       "lower-case hex digits"},
      {"rows_per_block 0", [](json& h, auto&) { h["tensors"][0]["rows_per_block"] = 0; }, "rows_per_block 0"},
      {"rows_per_block beyond rows", [](json& h, auto&) { h["tensors"][0]["rows_per_block"] = 7; }, "rows_per_block 7"},
      {"missing field", [](json& h, auto&) { h["tensors"][2].erase("offset"); }, "has no field 'offset'"},
      {"string offset", [](json& h, auto&) { h["tensors"][0]["offset"] = "0"; }, "'offset' must be a non-negative integer"},
      {"negative offset", [](json& h, auto&) { h["tensors"][0]["offset"] = -64; }, "'offset' must be a non-negative integer"},
      {"unknown tensor field", [](json& h, auto&) { h["tensors"][0]["scale"] = 1; }, "unknown field 'scale'"},
      {"unknown root field", [](json& h, auto&) { h["extra"] = 1; }, "unknown field 'extra'"},
      {"no tensors", [](json& h, auto&) { h.erase("tensors"); }, "has no field 'tensors'"},
      {"tensors not an array", [](json& h, auto&) { h["tensors"] = json::object(); }, "'tensors' must be a JSON array"},
      {"arch not an object", [](json& h, auto&) { h["arch"] = "v7"; }, "'arch' must be a JSON object"},
      {"header version disagrees", [](json& h, auto&) { h["format"]["minor"] = 1; },
       "header says format version 1.1 but the preamble says 1.0"},
      {"deep nesting",
       [](json& h, auto&) {
         json deep = json::array();
         for (int i = 0; i < 100; ++i) deep = json::array({deep});
         h["metadata"]["deep"] = deep;
       },
       "nested deeper than 64"},
      {"too many values", [](json& h, auto&) { h["metadata"]["many"] = std::vector<int>(1100000, 0); },
       "more than 1048576 values"},
      {"hole in the data section",
       [](json& h, std::vector<uint8_t>& d) {
         // 64 zero bytes inserted before tensor 1, which moves (with everything after it) by 64.
         const uint64_t at = h["tensors"][1]["offset"];
         d.insert(d.begin() + static_cast<std::ptrdiff_t>(at), 64, 0);
         for (size_t i = 1; i < h["tensors"].size(); ++i) h["tensors"][i]["offset"] = h["tensors"][i]["offset"].get<uint64_t>() + 64;
       },
       "must have no holes"},
      {"data after the last tensor", [](json&, std::vector<uint8_t>& d) { d.insert(d.end(), 64, 0); },
       "but the data section has"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    json header = valid.header;
    auto data = valid.data;
    c.mutate(header, data);
    spit(path, assemble(header.dump(), data));
    const std::string message = open_error(path);
    CHECK_THAT(message, Catch::Contains(c.fragment));
    CHECK_THAT(message, Catch::StartsWith("'" + path + "'"));
  }

  // Text-level problems JSON libraries hide.
  const std::string text = valid.header.dump();
  spit(path, assemble("{\"arch\":{}," + text.substr(1), valid.data));
  CHECK_THAT(open_error(path), Catch::Contains("key 'arch' twice"));
  spit(path, assemble(text.substr(0, text.size() - 1), valid.data));
  CHECK_THAT(open_error(path), Catch::Contains("not valid JSON"));
  spit(path, assemble("[]", valid.data));
  CHECK_THAT(open_error(path), Catch::Contains("header must be a JSON object"));

  // Preamble problems, each with a header and data that are otherwise valid.
  struct PreambleCase {
    const char* what;
    std::function<void(Preamble&)> tweak;
    const char* fragment;
  };
  const PreambleCase preamble_cases[] = {
      {"major version 2", [](Preamble& p) { p.major = 2; }, "version 2.0 is not supported"},
      {"major version 0", [](Preamble& p) { p.major = 0; }, "version 0.0 is not supported"},
      {"preamble size", [](Preamble& p) { p.preamble_size = 32; }, "preamble size 32"},
      {"header size beyond file", [](Preamble& p) { p.header_size += 1000; }, "extends beyond the end of the file"},
      {"header size 1 GiB", [](Preamble& p) { p.header_size = uint64_t{1} << 30; }, "exceeds the format's limit"},
      {"header offset overflow", [](Preamble& p) { p.header_offset = ~uint64_t{0} - 10; }, "extends beyond the end"},
      {"empty header", [](Preamble& p) { p.header_size = 0; }, "header is empty"},
      {"data offset", [](Preamble& p) { p.data_offset = 128; }, "data offset 128"},
      {"data size unaligned", [](Preamble& p) { p.data_size += 1; }, "is not a multiple of 64"},
      {"data size too large", [](Preamble& p) { p.data_size += 64; }, "does not directly follow the data section"},
      {"header offset",
       [](Preamble& p) {
         p.header_offset -= 64;
         p.header_size += 64;
       },
       "does not directly follow the data section"},
      {"header checksum", [](Preamble& p) { p.header_xxh64 ^= 1; }, "header checksum mismatch"},
      {"recorded size too large", [](Preamble& p) { p.file_size += 1; }, "is truncated"},
      {"recorded size too small", [](Preamble& p) { p.file_size -= 1; }, "more than the"},
  };
  const std::string header_text = valid.header.dump();
  for (const PreambleCase& c : preamble_cases) {
    CAPTURE(c.what);
    spit(path, assemble(header_text, valid.data, 0, c.tweak));
    CHECK_THAT(open_error(path), Catch::Contains(c.fragment));
  }
  spit(path, assemble(header_text, valid.data, 0, [](Preamble& p) { p.major = 2; }));
  std::cout << "example rejection: " << open_error(path) << "\n";
}

TEST_CASE("a newer minor version with additive fields is readable", "[format]") {
  const std::string src = scratch("minor.rwkvlite");
  write_small(src);
  Parts parts = split(slurp(src));
  parts.header["format"]["minor"] = 3;
  parts.header["tensors"][0]["future_field"] = {{"anything", true}};
  parts.header["future_section"] = json::array();
  const std::string path = scratch("minor3.rwkvlite");
  spit(path, assemble(parts.header.dump(), parts.data, 3));
  const CompactFile f = CompactFile::open(path);
  CHECK(f.minor_version() == 3);
  CHECK(f.verify().empty());
  CHECK(f.decode_tensor("emb.weight").data == small_inputs().at("emb.weight").values);
}

TEST_CASE("wrong kinds of files are named", "[format]") {
  const std::string path = scratch("other.bin");
  spit(path, {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0});
  CHECK_THAT(open_error(path), Catch::Contains("is not an rwkvlite compact file: it is a zip archive"));
  spit(path, {});
  CHECK_THAT(open_error(path), Catch::Contains("is not an rwkvlite compact file: it is an empty file"));
  const std::string gguf = "GGUF\x03\x00\x00\x00";
  spit(path, std::vector<uint8_t>(gguf.begin(), gguf.end()));
  CHECK_THAT(open_error(path), Catch::Contains("GGUF"));
  CHECK_THAT(open_error(scratch("does-not-exist")), Catch::Contains("cannot open"));
}

TEST_CASE("verify checks contents the checksums cannot", "[format]") {
  const std::string src = scratch("content.rwkvlite");
  write_small(src);
  Parts parts = split(slurp(src));
  // A NaN in emb.weight, with checksums recomputed so only the content check can see it.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(parts.data.data() + 4 * 7, &nan, 4);
  rehash(parts.header, parts.data);
  const std::string path = scratch("content-nan.rwkvlite");
  spit(path, assemble(parts.header.dump(), parts.data));
  const CompactFile f = CompactFile::open(path);
  const auto problems = f.verify();
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("'emb.weight'") && Catch::Contains("non-finite f32 value at row 1, column 2"));
}

TEST_CASE("the writer refuses bad input and never leaves partial output", "[format]") {
  const std::string path = scratch("writer.rwkvlite");
  const std::vector<float> v(12, 0.5f);
  {
    CompactWriter w(path);
    w.add_tensor("a", Encoding::F32, {}, {3, 4}, v.data(), 1);
    CHECK_THROWS_AS(w.add_tensor("a", Encoding::F32, {}, {3, 4}, v.data(), 1), UsageError);
    CHECK_THROWS_AS(w.add_tensor("b c", Encoding::F32, {}, {3, 4}, v.data(), 1), UsageError);
    CHECK_THROWS_AS(w.add_tensor("", Encoding::F32, {}, {3, 4}, v.data(), 1), UsageError);
    CHECK_THROWS_AS(w.add_tensor("z", Encoding::F32, {}, {3, 0}, v.data(), 1), UsageError);
    CHECK_THROWS_AS(w.add_tensor("z", Encoding::I4, {16}, {3, 4}, v.data(), 1), UsageError);
    const std::vector<uint8_t> short_bytes(10);
    CHECK_THROWS_AS(w.add_tensor("z", EncodingSpec{Encoding::U8, {}}, {3, 4}, short_bytes.data(), 10, 1), UsageError);
    std::vector<uint8_t> nan_bytes(12 * 4, 0xff);  // f32 NaNs, correctly sized
    CHECK_THROWS_WITH(w.add_tensor("z", EncodingSpec{Encoding::F32, {}}, {3, 4}, nan_bytes.data(), 48, 1),
                      Catch::Contains("non-finite"));
    // Rejected calls above did not write anything: the writer is still usable.
    const std::vector<uint8_t> raw = {1, 2, 3};
    w.add_tensor("raw", EncodingSpec{Encoding::U8, {}}, {3}, raw.data(), 3, 0);
    CHECK_THROWS_AS(w.finish(json::array(), json::object(), json::object()), UsageError);
    json deep = json::array();
    for (int i = 0; i < 80; ++i) deep = json::array({deep});
    CHECK_THROWS_WITH(w.finish(json::object(), json::object(), {{"deep", deep}}), Catch::Contains("nested deeper"));
    CHECK_FALSE(std::filesystem::exists(path));
    w.finish(json::object(), json::object(), json::object());
    CHECK_THROWS_AS(w.finish(json::object(), json::object(), json::object()), UsageError);
  }
  CHECK(CompactFile::open(path).verify().empty());

  const std::string never = scratch("never.rwkvlite");
  {
    CompactWriter w(never);
    w.add_tensor("a", Encoding::F32, {}, {3, 4}, v.data(), 1);
    std::vector<float> bad = v;
    bad[9] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(w.add_tensor("b", Encoding::I8, {}, {3, 4}, bad.data(), 1),
                      Catch::Contains("tensor 'b'") && Catch::Contains("row 2, column 1"));
    CHECK_THROWS_AS(w.add_tensor("c", Encoding::F32, {}, {3, 4}, v.data(), 1), UsageError);  // unusable now
  }
  CHECK_FALSE(std::filesystem::exists(never));
  {
    CompactWriter w(never);
    w.add_tensor("a", Encoding::F32, {}, {3, 4}, v.data(), 1);
  }  // destroyed without finish()
  CHECK_FALSE(std::filesystem::exists(never));
  for (const auto& entry : std::filesystem::directory_iterator(test::scratch_dir())) {
    CHECK(entry.path().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("a header beyond the size limit is refused by the writer", "[format]") {
  const std::string path = scratch("huge-header.rwkvlite");
  CompactWriter w(path);
  const float one = 1.0f;
  w.add_tensor("a", Encoding::F32, {}, {1}, &one, 1);
  CHECK_THROWS_AS(w.finish(json::object(), json::object(), {{"blob", std::string(kMaxHeaderBytes, 'x')}}), ResourceError);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("randomly mutated headers never crash the reader", "[format]") {
  // The header checksum stops plain corruption before the parser sees it; here the checksum is
  // recomputed after each mutation, so the parser and the schema checks face the mutated text
  // directly. Every outcome must be a clean open or an InputError, and an opened file must
  // read (or refuse with InputError) every tensor without crashing.
  const std::string src = scratch("fuzz-src.rwkvlite");
  write_small(src);
  const Parts valid = split(slurp(src));
  const std::string text = valid.header.dump();
  const std::string path = scratch("fuzz.rwkvlite");
  std::mt19937_64 rng(12345);
  const char* tokens[] = {"0", "-1", "18446744073709551615", "18446744073709551616", "1e300", "null", "[]", "{}",
                          "\"\"", "\"i4g32\"", "64", "4611686018427387904", "[1,1]", ",", ":", "\"x\":1,"};
  const char* fields[] = {"offset", "nbytes", "row_bytes", "rows_per_block", "shape"};
  size_t opened = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string h;
    if (iter % 2 == 0) {
      // Structured: one numeric field of one tensor set to an extreme value.
      json header = valid.header;
      auto& t = header["tensors"][rng() % header["tensors"].size()];
      const char* field = fields[rng() % std::size(fields)];
      const uint64_t values[] = {0, 1, 63, 64, 65, uint64_t{1} << 32, uint64_t{1} << 62, ~uint64_t{0},
                                 static_cast<uint64_t>(rng() % 4096)};
      const uint64_t v = values[rng() % std::size(values)];
      if (std::string(field) == "shape") {
        t["shape"] = {v, 1 + rng() % 64};
      } else {
        t[field] = v;
      }
      h = header.dump();
    } else {
      // Textual: a few random edits.
      h = text;
      for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
        const size_t at = rng() % h.size();
        switch (rng() % 3) {
          case 0: h[at] = static_cast<char>(rng() % 256); break;
          case 1: h = h.substr(0, at) + tokens[rng() % std::size(tokens)] + h.substr(at); break;
          case 2: h.erase(at, 1 + rng() % 8); break;
        }
      }
      if (h.empty()) h.push_back('{');
    }
    spit(path, assemble(h, valid.data));
    try {
      const CompactFile f = CompactFile::open(path);
      ++opened;
      for (const TensorInfo& t : f.tensors()) {
        try {
          f.decode_tensor(t.name);
          f.read_rows(t.name, t.rows - 1, 1);
        } catch (const InputError&) {
        }
      }
      f.verify();
    } catch (const InputError&) {
      ++rejected;
    }
  }
  std::cout << "mutated headers: " << rejected << " rejected, " << opened << " opened (then read safely)\n";
  CHECK(rejected > 2500);
}

TEST_CASE("arch and dims helpers round trip through a header", "[format]") {
  ModelDims dims;
  dims.n_layer = 2, dims.n_embd = 64, dims.n_vocab = 65536, dims.n_head = 1, dims.head_size = 64, dims.ffn_size = 224;
  dims.lora_w = 32, dims.lora_a = 32, dims.lora_v = 16, dims.lora_g = 64;
  const std::string path = scratch("model-json.rwkvlite");
  {
    CompactWriter w(path);
    const float one = 1.0f;
    w.add_tensor("x", Encoding::F32, {}, {1}, &one, 1);
    w.finish(arch_to_json(ArchVersion::V7, 64e-5f), dims_to_json(dims), json::object());
  }
  const CompactFile f = CompactFile::open(path);
  const ArchInfo arch = arch_from_json(f.arch());
  CHECK(arch.arch == ArchVersion::V7);
  CHECK(arch.ln_x_eps == 64e-5f);
  const ModelDims back = dims_from_json(f.dims());
  CHECK(dims_to_json(back) == dims_to_json(dims));
  CHECK_THROWS_WITH(arch_from_json({{"version", "v9"}, {"ln_x_eps", 1e-5}}), Catch::Contains("unknown architecture"));
  CHECK_THROWS_AS(arch_from_json({{"version", "v7"}, {"ln_x_eps", -1}}), InputError);
  json bad = dims_to_json(dims);
  bad["n_embd"] = -1;
  CHECK_THROWS_WITH(dims_from_json(bad), Catch::Contains("'n_embd'"));
}
