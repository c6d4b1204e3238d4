// The bad-file table of #17: hand-made broken inputs of every format rwkvlite reads (rwkv.cpp
// .bin, safetensors, .pth, compact files, TOML configs and sweep files, tokenizer vocabularies),
// each run through the built CLI as a user would. Every row says how its file is made (from a
// valid file, in a temporary folder: no binary fixtures), the exit code and a fragment of the
// one error message. A crash, a hang-free huge allocation or a success is a failed row.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/format/compact_format.h"
#include "tests/support/cli_runner.h"
#include "tests/support/test_support.h"

namespace {

using namespace rwkvlite::test;
using nlohmann::json;
using Bytes = std::string;

const std::string kTinyBin = "third_party/tiny-rwkv/tiny-rwkv-5v2-730K-FP32.bin";

std::string dir() { return case_dir("bad-files"); }

void put_u32(Bytes& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); }
void put_u64(Bytes& b, size_t at, uint64_t v) { std::memcpy(&b[at], &v, 8); }
uint32_t get_u32(const Bytes& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, &b[at], 4);
  return v;
}
uint64_t get_u64(const Bytes& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, &b[at], 8);
  return v;
}

// Valid files the rows start from, made once by the CLI itself.
const Bytes& valid(const std::string& ext) {
  static std::map<std::string, Bytes> made;
  auto it = made.find(ext);
  if (it != made.end()) return it->second;
  const std::string path = dir() + "/valid" + ext;
  if (ext == ".bin") {
    return made[ext] = read_all(source_dir() + "/" + kTinyBin);
  }
  Result r = ext == ".rwkvlite"
                 ? run("rwkvlite", "compress " + kTinyBin + " -o '" + path + "' -c configs/dense-fp32.toml --force -q")
                 : run("rwkvlite", "convert " + kTinyBin + " '" + path + "' --force -q");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return made[ext] = read_all(path);
}

// rwkv.cpp: a 24-byte file header, then per tensor dims, key length, type, dims, key, data.
size_t bin_first_data(const Bytes& b) { return 24 + 12 + 4 * get_u32(b, 24) + get_u32(b, 28); }

// safetensors: u64 header length, JSON header, data.
Bytes safetensors(const std::string& header, const Bytes& data) {
  Bytes out(8, '\0');
  put_u64(out, 0, header.size());
  return out + header + data;
}
json st_header(const Bytes& b) { return json::parse(b.substr(8, get_u64(b, 0))); }
Bytes st_data(const Bytes& b) { return b.substr(8 + get_u64(b, 0)); }
Bytes st_entry(const char* dtype, const std::string& shape, uint64_t begin, uint64_t end) {
  return std::string("{\"dtype\":\"") + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(begin) +
         "," + std::to_string(end) + "]}";
}

// .pth: the zip central directory entry (signature PK\1\2) whose name ends in `suffix`.
size_t zip_dir_entry(const Bytes& b, const std::string& suffix) {
  for (size_t at = b.find("PK\x01\x02"); at != Bytes::npos; at = b.find("PK\x01\x02", at + 4)) {
    const uint16_t name_len = static_cast<uint8_t>(b[at + 28]) | static_cast<uint8_t>(b[at + 29]) << 8;
    const std::string name = b.substr(at + 46, name_len);
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) return at;
  }
  FAIL("no zip entry ending in " << suffix);
  return 0;
}

std::string write(const std::string& name, const Bytes& bytes) {
  const std::string path = dir() + "/" + name;
  write_file(path, bytes);
  return "'" + path + "'";
}

std::string nested(const std::string& open, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += open;
  return s;
}

std::string segments(int n) {
  std::string s = "a";
  for (int i = 1; i < n; ++i) s += ".a";
  return s;
}

// compact: the valid file with its JSON header edited and the preamble made consistent again
// (header size, file size, header checksum), as someone editing a file on purpose would do. The
// format's own checks all pass; what must catch these is the loader's check against the dims.
Bytes compact_with_header(const std::function<void(json&)>& edit) {
  Bytes b = valid(".rwkvlite");
  const uint64_t header_offset = get_u64(b, 16);
  json h = json::parse(b.substr(header_offset, get_u64(b, 24)));
  edit(h);
  const std::string text = h.dump();
  b.resize(header_offset);
  b += text;
  put_u64(b, 24, text.size());
  put_u64(b, 48, b.size());
  put_u64(b, 56, rwkvlite::format::xxh64(text.data(), text.size()));
  return b;
}
std::string eval_compact(const Bytes& b) { return "eval " + write("m.rwkvlite", b) + " --max-bytes 64"; }

struct Row {
  const char* name;
  std::function<std::string()> make;  // writes the file(s), returns the command line after `rwkvlite`
  int exit_code;
  const char* fragment;
};

std::string inspect(const std::string& file) { return "inspect " + file; }
std::string compress_with(const std::string& config_text) {
  return "compress " + kTinyBin + " -o '" + dir() + "/out.rwkvlite' --force -c " + write("config.toml", config_text);
}

// The data offset and element count of the f32 tensor `name` of a rwkv.cpp file.
std::pair<size_t, size_t> bin_tensor(const Bytes& b, const std::string& name) {
  size_t at = 24;
  while (at + 12 <= b.size()) {
    const uint32_t n_dims = get_u32(b, at), key_len = get_u32(b, at + 4), dtype = get_u32(b, at + 8);
    size_t numel = 1;
    for (uint32_t i = 0; i < n_dims; ++i) numel *= get_u32(b, at + 12 + 4 * i);
    const size_t key_at = at + 12 + 4 * n_dims, data_at = key_at + key_len;
    if (b.compare(key_at, key_len, name) == 0) {
      REQUIRE(dtype == 0);
      return {data_at, numel};
    }
    at = data_at + numel * (dtype == 0 ? 4 : 2);
  }
  FAIL("no tensor " << name);
  return {0, 0};
}

// The valid .bin with every head weight set to a large finite float: the file is valid, its
// logits are not.
Bytes bin_with_overflowing_head() {
  Bytes b = valid(".bin");
  const auto [at, n] = bin_tensor(b, "head.weight");
  for (size_t i = 0; i < n; ++i) {
    const float v = (i % 2 ? -3e38f : 3e38f);
    std::memcpy(&b[at + 4 * i], &v, 4);
  }
  return b;
}

Bytes bin_with(const std::function<void(Bytes&)>& edit) {
  Bytes b = valid(".bin");
  edit(b);
  return b;
}
Bytes with_float(Bytes b, size_t at, float v) {
  std::memcpy(&b[at], &v, 4);
  return b;
}

const std::vector<Row>& rows() {
  static const std::vector<Row> table = {
      // ---- rwkv.cpp .bin ----
      {"bin: bad magic", [] { return inspect(write("m.bin", bin_with([](Bytes& b) { b.replace(0, 4, "XXXX"); }))); }, 3,
       "is not a model file rwkvlite reads"},
      {"bin: truncated inside the file header", [] { return inspect(write("m.bin", valid(".bin").substr(0, 10))); }, 3,
       "has only 10 bytes"},
      {"bin: truncated at the end of the file header", [] { return inspect(write("m.bin", valid(".bin").substr(0, 24))); }, 3,
       "has a header but no tensors"},
      {"bin: truncated inside a tensor header", [] { return inspect(write("m.bin", valid(".bin").substr(0, 30))); }, 3,
       "truncated"},
      {"bin: truncated inside tensor data",
       [] { return inspect(write("m.bin", valid(".bin").substr(0, valid(".bin").size() / 2))); }, 3, "truncated"},
      {"bin: one byte short", [] { return inspect(write("m.bin", valid(".bin").substr(0, valid(".bin").size() - 1))); }, 3,
       "truncated"},
      {"bin: file dtype out of range", [] { return inspect(write("m.bin", bin_with([](Bytes& b) { put_u32(b, 20, 99); }))); },
       3, "99"},
      {"bin: tensor dtype out of range", [] { return inspect(write("m.bin", bin_with([](Bytes& b) { put_u32(b, 32, 77); }))); },
       3, "77"},
      {"bin: key length of a gigabyte",
       [] { return inspect(write("m.bin", bin_with([](Bytes& b) { put_u32(b, 28, 1u << 30); }))); }, 3, "has a name length of 1073741824"},
      {"bin: a thousand dimensions", [] { return inspect(write("m.bin", bin_with([](Bytes& b) { put_u32(b, 24, 1000); }))); },
       3, "dimension"},
      {"bin: dimensions whose product needs terabytes",
       [] {
         return inspect(write("m.bin", bin_with([](Bytes& b) {
                                put_u32(b, 24, 2);
                                put_u32(b, 36, 1u << 30);
                                put_u32(b, 40, 1u << 30);
                              })));
       },
       3, "'"},
      {"bin: NaN weight",
       [] {
         return inspect(write("m.bin", with_float(valid(".bin"), bin_first_data(valid(".bin")),
                                                  std::numeric_limits<float>::quiet_NaN())));
       },
       3, "NaN or Inf values"},
      {"bin: Inf weight",
       [] {
         return inspect(write("m.bin", with_float(valid(".bin"), bin_first_data(valid(".bin")) + 4,
                                                  std::numeric_limits<float>::infinity())));
       },
       3, "NaN or Inf values"},
      {"bin: finite weights whose logits overflow (eval)",
       [] { return "eval " + write("m.bin", bin_with_overflowing_head()) + " --max-bytes 16"; }, 3,
       "logits at token 0 are not finite"},
      {"bin: finite weights whose logits overflow (generate)",
       [] { return "generate " + write("m.bin", bin_with_overflowing_head()) + " --prompt 'To be' -n 4"; }, 3,
       "logits at the end of the prompt are not finite"},

      // ---- safetensors ----
      {"safetensors: header larger than the file",
       [] {
         Bytes b = safetensors("{\"a\":" + st_entry("F32", "[2]", 0, 8) + "}", Bytes(8, '\0'));
         put_u64(b, 0, 4096);
         return inspect(write("m.safetensors", b));
       },
       3, "is truncated"},
      {"safetensors: header of a terabyte",
       [] {
         Bytes b = safetensors("{\"a\":" + st_entry("F32", "[2]", 0, 8) + "}", Bytes(8, '\0'));
         put_u64(b, 0, uint64_t{1} << 31);
         b[8] = '{';
         return inspect(write("m.safetensors", b));
       },
       3, "exceeds the limit"},
      {"safetensors: overlapping tensors",
       [] {
         return inspect(write("m.safetensors", safetensors("{\"a\":" + st_entry("F32", "[2]", 0, 8) + ",\"b\":" +
                                                               st_entry("F32", "[3]", 4, 16) + "}",
                                                           Bytes(16, '\0'))));
       },
       3, "overlap"},
      {"safetensors: offsets past the end",
       [] {
         return inspect(
             write("m.safetensors", safetensors("{\"a\":" + st_entry("F32", "[4]", 0, 16) + "}", Bytes(8, '\0'))));
       },
       3, "is truncated or its offsets are wrong"},
      {"safetensors: a tensor named twice",
       [] {
         return inspect(write("m.safetensors", safetensors("{\"a\":" + st_entry("F32", "[2]", 0, 8) + ",\"a\":" +
                                                               st_entry("F32", "[2]", 8, 16) + "}",
                                                           Bytes(16, '\0'))));
       },
       3, "names 'a' twice"},
      {"safetensors: a dtype key twice in one tensor",
       [] {
         return inspect(write(
             "m.safetensors",
             safetensors(R"({"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", Bytes(8, '\0'))));
       },
       3, "names 'dtype' twice in one object"},
      {"safetensors: a metadata entry twice",
       [] {
         return inspect(write("m.safetensors", safetensors(R"({"__metadata__":{"k":"1","k":"2"},"a":)" +
                                                               st_entry("F32", "[2]", 0, 8) + "}",
                                                           Bytes(8, '\0'))));
       },
       3, "names 'k' twice"},
      {"safetensors: millions of nested arrays",
       [] {
         return inspect(write("m.safetensors", safetensors("{\"a\":" + nested("[", 2'000'000) + "}", Bytes())));
       },
       3, "nests deeper than 8 levels"},
      {"safetensors: shape whose product overflows",
       [] {
         return inspect(write("m.safetensors", safetensors("{\"a\":" +
                                                               st_entry("F32", "[1099511627776,1099511627776]", 0, 8) +
                                                               "}",
                                                           Bytes(8, '\0'))));
       },
       3, "overflows"},
      {"safetensors: dtype out of range",
       [] {
         return inspect(
             write("m.safetensors", safetensors("{\"a\":" + st_entry("Q99", "[2]", 0, 8) + "}", Bytes(8, '\0'))));
       },
       3, "unknown dtype Q99"},
      {"safetensors: NaN weight",
       [] {
         Bytes b = valid(".safetensors");
         return inspect(write("m.safetensors", with_float(b, 8 + get_u64(b, 0), std::numeric_limits<float>::quiet_NaN())));
       },
       3, "NaN or Inf values"},
      {"safetensors: group-norm epsilon 1e30",
       [] {
         const Bytes& b = valid(".safetensors");
         json h = st_header(b);
         h["__metadata__"]["rwkvlite.ln_x_eps"] = "1e30";
         std::string text = h.dump();
         text.append((8 - text.size() % 8) % 8, ' ');
         return inspect(write("m.safetensors", safetensors(text, st_data(b))));
       },
       3, "not a number in (0, "},

      // ---- .pth (zip) ----
      {"pth: a storage byte changed (CRC-32 mismatch)",
       [] {
         Bytes b = valid(".pth");
         const size_t at = zip_dir_entry(b, "data/0");
         const uint32_t local = get_u32(b, at + 42);
         const size_t data = local + 30 + (static_cast<uint8_t>(b[local + 26]) | static_cast<uint8_t>(b[local + 27]) << 8) +
                             (static_cast<uint8_t>(b[local + 28]) | static_cast<uint8_t>(b[local + 29]) << 8);
         b[data] ^= 0x01;
         return inspect(write("m.pth", b));
       },
       3, "CRC-32"},
      {"pth: data.pkl declaring 4 GiB",
       [] {
         Bytes b = valid(".pth");
         put_u32(b, zip_dir_entry(b, "data.pkl") + 24, 0xFFFFFFF0u);
         return inspect(write("m.pth", b));
       },
       3, "corrupt or foreign zip archive"},
      {"pth: a storage record declaring another size",
       [] {
         Bytes b = valid(".pth");
         put_u32(b, zip_dir_entry(b, "data/0") + 24, 0x7FFFFFF0u);
         return inspect(write("m.pth", b));
       },
       3, "corrupt or foreign zip archive"},
      {"pth: an entry named with '..'",
       [] {
         Bytes b = valid(".pth");
         b.replace(zip_dir_entry(b, "data/1") + 46, 3, "../");
         return inspect(write("m.pth", b));
       },
       3, "'..' path"},
      {"pth: truncated to half", [] { return inspect(write("m.pth", valid(".pth").substr(0, valid(".pth").size() / 2))); },
       3, "corrupt or foreign zip archive"},

      // ---- compact ----
      {"compact: bad magic",
       [] {
         Bytes b = valid(".rwkvlite");
         b.replace(0, 8, "NOTRWKVL");
         return inspect(write("m.rwkvlite", b));
       },
       3, "not a model file"},
      {"compact: truncated to 16 bytes", [] { return inspect(write("m.rwkvlite", valid(".rwkvlite").substr(0, 16))); }, 3,
       "it looks like an rwkvlite compact file"},
      {"compact: truncated to half",
       [] { return inspect(write("m.rwkvlite", valid(".rwkvlite").substr(0, valid(".rwkvlite").size() / 2))); }, 3,
       "it looks like an rwkvlite compact file"},

      {"compact: dims declare one layer fewer (header checksum recomputed)",
       [] { return eval_compact(compact_with_header([](json& h) { h["dims"]["n_layer"] = h["dims"]["n_layer"].get<int>() - 1; })); },
       3, "belongs to layer 11, but the header's dims declare 11 layers"},
      {"compact: dims declare one layer more (header checksum recomputed)",
       [] { return eval_compact(compact_with_header([](json& h) { h["dims"]["n_layer"] = h["dims"]["n_layer"].get<int>() + 1; })); },
       3, "declare 13 layers, but the file has no tensors of layer 12"},
      {"compact: sparse channel-mix metadata lists a layer twice (header checksum recomputed)",
       [] {
         return eval_compact(compact_with_header([](json& h) {
           h["metadata"]["sparse_ffn"] = {{"layers", {{{"layer", 0}, {"sign_top_k", 8}}, {{"layer", 0}, {"sign_top_k", 64}}}}};
         }));
       },
       3, "lists the layer twice"},
      {"compact: sparse channel-mix metadata names a layer the dims do not have (header checksum recomputed)",
       [] {
         return eval_compact(compact_with_header([](json& h) {
           h["metadata"]["sparse_ffn"] = {{"layers", {{{"layer", 99}, {"sign_top_k", 8}}}}};
         }));
       },
       3, "names layer 99, but the header's dims declare"},

      // ---- tokenizer vocabulary ----
      {"vocabulary: a line that is not a token entry",
       [] {
         return "eval " + kTinyBin + " --tokenizer " + write("vocab.txt", "1 'a' 1\nthis is not an entry\n");
       },
       3, "vocab.txt"},

      // ---- TOML configs and sweep files ----
      {"config: a table header of 100,000 segments", [] { return compress_with("[" + segments(100'000) + "]\n"); }, 2,
       "dotted segments exceeds the limit"},
      {"config: a dotted key of 100,000 segments", [] { return compress_with(segments(100'000) + " = 1\n"); }, 2,
       "dotted segments exceeds the limit"},
      {"config: 100,000 nested arrays", [] { return compress_with("x = " + nested("[", 100'000) + "\n"); }, 2,
       "nested more than 32 deep"},
      {"config: 100,000 nested inline tables", [] { return compress_with("x = " + nested("{a=", 100'000) + "\n"); }, 2,
       "nested more than 32 deep"},
      {"config: 10 MB", [] { return compress_with("# " + std::string(10'000'000, 'x') + "\n"); }, 2,
       "exceeds the limit of 1048576 bytes"},
      {"config: 300 passes",
       [] {
         std::string t;
         for (int i = 0; i < 300; ++i) t += "[[pass]]\ntype = \"quantize\"\n";
         return compress_with(t);
       },
       2, "300 [[pass]] tables exceed the limit of 256"},
      {"config: 5,000 targets",
       [] {
         std::string t = "[[pass]]\ntype = \"lowrank\"\ntargets = [";
         for (int i = 0; i < 5000; ++i) t += "\"blocks.*.att.key.weight\",";
         return compress_with(t + "]\n");
       },
       2, "more than the limit of 4096"},
      {"config: a 5,000-character regex",
       [] {
         return compress_with("[[pass]]\ntype = \"lowrank\"\ntargets = [\"re:" + std::string(5000, 'a') + "\"]\n");
       },
       2, "exceed the limit of 1024"},
      {"config: a regex of 100 nested groups",
       [] {
         return compress_with("[[pass]]\ntype = \"lowrank\"\ntargets = [\"re:" + nested("(", 100) + "a" +
                              std::string(100, ')') + "\"]\n");
       },
       2, "groups nested more than 16 deep"},
      {"config: a regex back-reference of 20 digits (a signed overflow in std::regex; fuzz finding)",
       [] {
         return compress_with("[[pass]]\ntype = \"lowrank\"\ntargets = [\"re:\\\\99999999999999999999\"]\n");
       },
       2, "a number of more than 6 digits"},
      {"config: nested regex repetitions of a million copies",
       [] { return compress_with("[[pass]]\ntype = \"lowrank\"\ntargets = [\"re:((a{99}){99}){99}\"]\n"); }, 2,
       "repetition counts whose product exceeds 10000"},
      {"config: -c names a directory",
       [] { return "compress " + kTinyBin + " -o '" + dir() + "/out.rwkvlite' --force -c '" + dir() + "'"; }, 2,
       "is a directory"},
      {"sweep: a table header of 100,000 segments",
       [] { return "sweep " + write("sweep.toml", "[" + segments(100'000) + "]\n") + " -o '" + dir() + "/sweep-out'"; },
       2, "dotted segments exceeds the limit"},

      // ---- command lines around the files ----
      {"output: a directory", [] { return "convert " + kTinyBin + " '" + dir() + "' --force"; }, 2, "is a directory"},
      {"--log-level unknown", [] { return "--log-level loud " + inspect(kTinyBin); }, 2, "--log-level"},
      {"--ln-x-eps nan", [] { return "eval " + kTinyBin + " --ln-x-eps nan"; }, 2, "group-norm epsilon"},
      {"--ln-x-eps 1e30", [] { return "eval " + kTinyBin + " --ln-x-eps 1e30"; }, 2, "group-norm epsilon"},
      {"--max-bytes -1", [] { return "eval " + kTinyBin + " --max-bytes -1"; }, 2, "--max-bytes"},
      {"generate: empty --prompt", [] { return "generate " + kTinyBin + " --prompt ''"; }, 2, "--prompt is empty"},
  };
  return table;
}

}  // namespace

// Builds without LibTorch (the sanitizer build) neither write nor read .pth: their rows are skipped.
static bool cli_handles_pth() {
  static const bool handles =
      run("rwkvlite", "convert " + kTinyBin + " '" + dir() + "/probe.pth' --force -q").exit_code == 0;
  return handles;
}

TEST_CASE("every bad file of the table fails with its exit code and one clear message", "[bad-files]") {
  REQUIRE(rows().size() >= 30);
  for (const Row& row : rows()) {
    INFO(row.name);
    if (std::string(row.name).rfind("pth:", 0) == 0 && !cli_handles_pth()) {
      WARN("skipped: this rwkvlite has no LibTorch, so no .pth: " << row.name);
      continue;
    }
    const std::string args = row.make();
    const Result r = run("rwkvlite", args);
    INFO("stderr: " << r.err.substr(0, 600));
    CHECK(r.exit_code == row.exit_code);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains(row.fragment));
  }
}
