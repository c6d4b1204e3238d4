// safetensors reader/writer and the load_model/save_model entry points (no LibTorch): bit-exact
// round trips on every tiny model, F16/BF16 rounding, the epsilon metadata, hostile files and
// format dispatch.
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/support/converter_test_helpers.h"
#include "converters/model_io.h"
#include "converters/rwkvcpp_file.h"
#include "converters/safetensors_file.h"
#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/core/half.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;
using nlohmann::json;

namespace {

// A safetensors file split into its parts, to build broken variants of a valid file.
struct SafetensorsParts {
  std::string header;
  std::vector<uint8_t> data;
};

SafetensorsParts split_safetensors(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  REQUIRE(8 + n <= bytes.size());
  SafetensorsParts p;
  p.header.assign(bytes.begin() + 8, bytes.begin() + 8 + static_cast<ptrdiff_t>(n));
  p.data.assign(bytes.begin() + 8 + static_cast<ptrdiff_t>(n), bytes.end());
  return p;
}

std::vector<uint8_t> join_safetensors(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::copy(header.begin(), header.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + 8 + static_cast<ptrdiff_t>(header.size()));
  return out;
}

std::string write_case(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = scratch_dir() + "/" + name;
  write_bytes(path, bytes);
  return path;
}

}  // namespace

TEST_CASE("rwkv.cpp -> safetensors -> canonical is bit-exact, and back to rwkv.cpp reproduces the file",
          "[safetensors]") {
  size_t models = 0, tensors = 0;
  for (const TinyModel* tm : available_models()) {
    INFO(tm->stem);
    const std::string source = tiny_model_path(tm->stem, "FP32");
    const Model original = read_rwkvcpp(source);
    const std::string st = scratch_dir() + "/" + tm->stem + ".safetensors";
    write_safetensors(original, st, SafetensorsDtype::F32);

    const Model again = read_safetensors(st);
    CHECK(std::string(arch_name(again.arch)) == tm->arch);
    CHECK(again.dims.n_layer == original.dims.n_layer);
    CHECK(again.dims.n_embd == original.dims.n_embd);
    CHECK(again.ln_x_eps == original.ln_x_eps);
    CHECK(again.source_format == "safetensors");
    const ModelComparison c = compare_models(original, again);
    CHECK(c.same_names_and_shapes);
    CHECK(c.tensors_bit_exact == c.tensors_compared);
    CHECK(c.elements_differing == 0);
    tensors += c.tensors_bit_exact;

    // safetensors -> rwkv.cpp: the stored (transformed) tensors come back bit for bit.
    const std::string bin = scratch_dir() + "/" + tm->stem + "-from-st.bin";
    write_rwkvcpp(again, bin, RwkvCppType::FP32);
    const RwkvCppRawFile a = read_rwkvcpp_raw(source);
    const RwkvCppRawFile b = read_rwkvcpp_raw(bin);
    REQUIRE(a.tensors.size() == b.tensors.size());
    std::map<std::string, const RwkvCppRawTensor*> by_name;  // the writer's order may differ from the file's
    for (const auto& t : b.tensors) by_name[t.name] = &t;
    size_t differing = 0;
    for (const auto& t : a.tensors) {
      INFO(t.name);
      REQUIRE(by_name.count(t.name));
      CHECK(by_name[t.name]->shape == t.shape);
      CHECK(by_name[t.name]->type == t.type);
      differing += count_bit_differences(t.data, by_name[t.name]->data);
    }
    CHECK(differing == 0);
    ++models;
  }
  WARN("safetensors round trip: " << models << " models, " << tensors << " tensors bit-exact");
}

TEST_CASE("safetensors files are deterministic, aligned and in the canonical order", "[safetensors]") {
  const std::string source = tiny_model_path("5v2-730K", "FP32");
  const Model m = read_rwkvcpp(source);
  const std::string a = scratch_dir() + "/det-a.safetensors", b = scratch_dir() + "/det-b.safetensors";
  write_safetensors(m, a, SafetensorsDtype::F32);
  write_safetensors(m, b, SafetensorsDtype::F32);
  CHECK(read_bytes(a) == read_bytes(b));

  const SafetensorsParts p = split_safetensors(a);
  CHECK((8 + p.header.size()) % 8 == 0);
  const json h = json::parse(p.header);
  CHECK(h["__metadata__"]["rwkvlite.ln_x_eps"] == "1e-05");
  // Data offsets increase in ordered_tensor_names order.
  uint64_t expected_begin = 0;
  for (const std::string& name : ordered_tensor_names(m)) {
    INFO(name);
    REQUIRE(h.contains(name));
    CHECK(h[name]["data_offsets"][0].get<uint64_t>() == expected_begin);
    expected_begin = h[name]["data_offsets"][1].get<uint64_t>();
  }
  CHECK(expected_begin == p.data.size());
}

TEST_CASE("F16 and BF16 safetensors hold exactly the rounded values", "[safetensors]") {
  for (const TinyModel* tm : available_models()) {
    const Model m = read_rwkvcpp(tiny_model_path(tm->stem, "FP32"));
    for (SafetensorsDtype dtype : {SafetensorsDtype::F16, SafetensorsDtype::BF16}) {
      INFO(tm->stem << " " << safetensors_dtype_name(dtype));
      const std::string path = scratch_dir() + "/" + tm->stem + "-" + safetensors_dtype_name(dtype) + ".safetensors";
      write_safetensors(m, path, dtype);
      CHECK(file_size_or_throw(path) < file_size_or_throw(tiny_model_path(tm->stem, "FP32")) * 6 / 10);
      const Model r = read_safetensors(path);
      size_t wrong = 0, changed = 0, total = 0;
      for (const auto& [name, t] : m.tensors) {
        CHECK(r.source_dtypes.at(name) == safetensors_dtype_name(dtype));
        const Tensor& q = r.at(name);
        REQUIRE(q.shape == t.shape);
        for (size_t i = 0; i < t.data.size(); ++i) {
          const float rounded = dtype == SafetensorsDtype::F16 ? fp16_to_float(float_to_fp16(t.data[i]))
                                                                : bf16_to_float(float_to_bf16(t.data[i]));
          wrong += std::memcmp(&rounded, &q.data[i], 4) != 0;
          changed += q.data[i] != t.data[i];
          ++total;
        }
      }
      CHECK(wrong == 0);
      // F16 rounding changes values; the v6 and v7 tiny models happen to be bf16-exact already.
      if (dtype == SafetensorsDtype::F16) CHECK(changed > 0);
      CHECK(total == static_cast<size_t>(m.parameter_count()));
    }
  }
}

TEST_CASE("F16 writing refuses values beyond its range", "[safetensors]") {
  Model m = read_rwkvcpp(tiny_model_path("7v0-834K", "FP32"));
  m.at("blocks.2.ffn.value.weight").data[5] = 1e6f;
  const std::string path = scratch_dir() + "/overflow.safetensors";
  const std::string msg =
      message_of<UsageError>([&] { write_safetensors(m, path, SafetensorsDtype::F16); });
  CHECK_THAT(msg, Catch::Contains("blocks.2.ffn.value.weight") && Catch::Contains("fp16"));
  CHECK_FALSE(exists(path));  // nothing left behind
  write_safetensors(m, path, SafetensorsDtype::BF16);  // bf16 has the range
  CHECK(read_safetensors(path).at("blocks.2.ffn.value.weight").data[5] == bf16_to_float(float_to_bf16(1e6f)));
}

TEST_CASE("the group-norm epsilon round-trips through the metadata", "[safetensors]") {
  Model m = read_rwkvcpp(tiny_model_path("7v0-834K", "FP32"));
  for (float eps : {64e-5f, 1e-5f, 3.3e-7f, 0.1f}) {
    m.ln_x_eps = eps;
    const std::string path = scratch_dir() + "/eps.safetensors";
    write_safetensors(m, path, SafetensorsDtype::F32);
    const float back = read_safetensors(path).ln_x_eps;
    CHECK(std::memcmp(&back, &eps, 4) == 0);
  }

  // Without the metadata (a file from another writer): the architecture's default.
  SafetensorsParts p = split_safetensors(scratch_dir() + "/eps.safetensors");
  json h = json::parse(p.header);
  h.erase("__metadata__");
  const std::string no_meta = write_case("no-meta.safetensors", join_safetensors(h.dump(), p.data));
  const Model r = read_safetensors(no_meta);
  CHECK(r.ln_x_eps == default_ln_x_eps(r.arch));

  // A malformed value is an error, not a silent default.
  h["__metadata__"] = {{"rwkvlite.ln_x_eps", "abc"}};
  const std::string bad = write_case("bad-eps.safetensors", join_safetensors(h.dump(), p.data));
  CHECK_THAT(message_of<InputError>([&] { read_safetensors(bad); }), Catch::Contains("not a number in (0, "));

  // load_model's override wins over the file.
  LoadOptions options;
  options.ln_x_eps = 2e-5f;
  CHECK(load_model(no_meta, options).ln_x_eps == 2e-5f);
  options.ln_x_eps = -1;
  CHECK_THROWS_AS(load_model(no_meta, options), UsageError);
}

TEST_CASE("hostile and broken safetensors files are rejected with a clear message", "[safetensors]") {
  // A small synthetic file: tensors a (F32 [2]) and b (F32 [3]) tiling 20 data bytes. Header
  // problems are found before the model is validated, so non-RWKV names are fine here.
  const std::vector<uint8_t> data20(20, 0);
  auto entry = [](const char* dtype, json shape, uint64_t begin, uint64_t end) {
    return json{{"dtype", dtype}, {"shape", std::move(shape)}, {"data_offsets", {begin, end}}};
  };
  auto file = [&](const json& header, const std::vector<uint8_t>& data) { return join_safetensors(header.dump(), data); };
  const json good = {{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {3}, 8, 20)}};

  std::vector<uint8_t> huge_length = file(good, data20);
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(huge_length.data(), &huge, 8);
  std::vector<uint8_t> long_length = file(good, data20);
  const uint64_t too_long = 5000;
  std::memcpy(long_length.data(), &too_long, 8);

  auto raw_header = [&](const std::string& text, const std::vector<uint8_t>& data) { return join_safetensors(text, data); };

  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
    const char* fragment;
  };
  const std::vector<Case> cases = {
      {"header length huge", huge_length, "exceeds the limit"},
      {"header length beyond the file", long_length, "is truncated"},
      {"offsets overlapping", file({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {3}, 4, 16)}}, std::vector<uint8_t>(16)),
       "overlap"},
      {"offsets out of bounds", file({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {3}, 8, 20)}}, std::vector<uint8_t>(16)),
       "ends at byte 20 of the data section, which has only 16"},
      {"hole in the data", file({{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {3}, 12, 24)}}, std::vector<uint8_t>(24)),
       "bytes 8..12 of the data section belong to no tensor"},
      {"trailing bytes", file(good, std::vector<uint8_t>(28)), "8 bytes after the last tensor"},
      {"wrong nbytes", file({{"a", entry("F32", {3}, 0, 8)}, {"b", entry("F32", {3}, 8, 20)}}, data20),
       "needs 12 bytes but its data_offsets span 8"},
      {"offsets reversed", file({{"a", entry("F32", {2}, 8, 0)}}, data20), "end before they begin"},
      {"non-JSON header", raw_header("{\"a\": {\"dtype\": \"F32\", ", data20), "not valid JSON"},
      {"header not an object", raw_header("[1, 2]  ", data20), "does not start with '{'"},
      {"empty header object", raw_header("{}", {}), "lists no tensors"},
      {"unknown dtype", file({{"a", entry("FOO", {2}, 0, 8)}}, std::vector<uint8_t>(8)), "unknown dtype FOO"},
      {"unsupported dtype", file({{"a", entry("I64", {1}, 0, 8)}}, std::vector<uint8_t>(8)),
       "has dtype I64; rwkvlite reads F32, F16 and BF16"},
      {"duplicate name",
       raw_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}})",
                  data20),
       "names 'a' twice"},
      {"negative dimension", file({{"a", entry("F32", {-2}, 0, 8)}}, std::vector<uint8_t>(8)), "negative value"},
      {"shape overflow", file({{"a", entry("F32", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 8)}}, std::vector<uint8_t>(8)),
       "overflows"},
      {"byte count overflow", file({{"a", entry("F32", {uint64_t{1} << 62}, 0, 8)}}, std::vector<uint8_t>(8)), "overflows"},
      {"fractional dimension", file({{"a", entry("F32", {2.5}, 0, 8)}}, std::vector<uint8_t>(8)), "not a non-negative integer"},
      {"missing field", file({{"a", {{"dtype", "F32"}, {"shape", {2}}}}}, std::vector<uint8_t>(8)), "has no \"data_offsets\""},
      {"metadata not strings", file({{"__metadata__", {{"k", 1}}}, {"a", entry("F32", {2}, 0, 8)}}, std::vector<uint8_t>(8)),
       "metadata 'k' is not a string"},
      {"too short", {1, 2, 3}, "too short for a safetensors file"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string path = write_case("hostile.safetensors", c.bytes);
    CHECK_THAT(message_of<InputError>([&] { read_safetensors(path); }), Catch::Contains(c.fragment));
  }

  // The valid synthetic file gets past the header and fails only as a model.
  const std::string path = write_case("synthetic.safetensors", file(good, data20));
  CHECK_THROWS_AS(read_safetensors(path), InputError);
}

TEST_CASE("a safetensors file truncated anywhere is rejected", "[safetensors]") {
  const Model m = read_rwkvcpp(tiny_model_path("5v2-730K", "FP32"));
  const std::string whole = scratch_dir() + "/whole.safetensors";
  write_safetensors(m, whole, SafetensorsDtype::F16);
  const std::vector<uint8_t> bytes = read_bytes(whole);
  const size_t header_end = 8 + split_safetensors(whole).header.size();
  const std::vector<std::pair<size_t, const char*>> cuts = {
      {0, "too short"},
      {5, "too short"},
      {8, "is truncated"},
      {header_end / 2, "is truncated"},
      {header_end, "is truncated or its offsets are wrong"},
      {header_end + 1000, "is truncated or its offsets are wrong"},
      {bytes.size() / 2, "is truncated or its offsets are wrong"},
      {bytes.size() - 1, "is truncated or its offsets are wrong"},
  };
  for (const auto& [size, fragment] : cuts) {
    INFO("cut at " << size);
    const std::string path = write_case("cut.safetensors", std::vector<uint8_t>(bytes.begin(), bytes.begin() + size));
    CHECK_THAT(message_of<InputError>([&] { read_safetensors(path); }), Catch::Contains(fragment));
  }
}

TEST_CASE("load_model picks the reader from the content and explains wrong files", "[model_io]") {
  const std::string bin = tiny_model_path("7v0-834K", "FP32");
  const Model m = load_model(bin);
  CHECK(m.arch == ArchVersion::V7);
  CHECK(detect_model_file(bin) == ModelFileKind::RwkvCpp);

  // A safetensors file under a misleading name still reads as safetensors.
  const std::string st = scratch_dir() + "/model-really-safetensors.bin";
  write_safetensors(m, st, SafetensorsDtype::F32);
  CHECK(detect_model_file(st) == ModelFileKind::Safetensors);
  const Model s = load_model(st);
  CHECK(s.source_format == "safetensors");
  CHECK(compare_models(m, s).elements_differing == 0);

  // A .pth without LibTorch support: convert first.
  const std::string zip = scratch_dir() + "/model.pth";
  write_bytes(zip, std::vector<uint8_t>{'P', 'K', 3, 4, 0, 0, 0, 0});
  CHECK(detect_model_file(zip) == ModelFileKind::PthZip);
  if (!pth_io_available()) {
    CHECK_THAT(message_of<InputError>([&] { load_model(zip); }), Catch::Contains("rwkvlite convert"));
    const std::string legacy = scratch_dir() + "/legacy.pth";
    write_bytes(legacy, std::vector<uint8_t>{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20});
    CHECK(detect_model_file(legacy) == ModelFileKind::LegacyTorchPickle);
    CHECK_THAT(message_of<InputError>([&] { load_model(legacy); }),
               Catch::Contains("re-save it with torch >= 1.6") && Catch::Contains("rwkvlite convert"));
  }

  struct Wrong {
    const char* name;
    std::string content;
    const char* fragment;
  };
  const std::vector<Wrong> wrong = {
      {"lfs.bin", "version https://git-lfs.github.com/spec/v1\noid sha256:abcd\nsize 1234\n", "git-lfs pointer"},
      {"model.gguf", std::string("GGUF\x03\0\0\0\0\0\0\0\0\0\0\0", 16), "GGUF"},
      {"empty.bin", "", "empty"},
      {"notes.safetensors", "These are not the weights you are looking for {really}.\n", "text"},
  };
  for (const Wrong& w : wrong) {
    INFO(w.name);
    const std::string path = scratch_dir() + "/" + w.name;
    write_text(path, w.content);
    const std::string msg = message_of<InputError>([&] { load_model(path); });
    CHECK_THAT(msg, Catch::Contains("is not a model file rwkvlite reads: it looks like") && Catch::Contains(w.fragment));
  }
  CHECK_THROWS_AS(load_model(scratch_dir() + "/does-not-exist.bin"), InputError);
}

TEST_CASE("save_model picks the writer from the extension and refuses what a format cannot store", "[model_io]") {
  const Model m = load_model(tiny_model_path("5v2-730K", "FP32"));
  const std::string dir = scratch_dir();

  save_model(m, dir + "/out.safetensors", "bf16");
  CHECK(read_safetensors(dir + "/out.safetensors").source_dtypes.at("emb.weight") == "BF16");
  save_model(m, dir + "/out.bin", "fp32");
  CHECK(compare_models(m, read_rwkvcpp(dir + "/out.bin")).elements_differing == 0);
  save_model(m, dir + "/out16.BIN", "fp16");
  CHECK(read_rwkvcpp_raw(dir + "/out16.BIN").data_type == RwkvCppType::FP16);

  CHECK_THAT(message_of<UsageError>([&] { save_model(m, dir + "/out.bin", "bf16"); }),
             Catch::Contains("fp32 or fp16, not bf16"));
  CHECK_THAT(message_of<UsageError>([&] { save_model(m, dir + "/out.gguf", "fp32"); }),
             Catch::Contains("cannot tell the output format"));
  CHECK_THAT(message_of<UsageError>([&] { save_model(m, dir + "/out", "fp32"); }),
             Catch::Contains("cannot tell the output format"));
  CHECK_THAT(message_of<UsageError>([&] { save_model(m, dir + "/out.safetensors", "int8"); }),
             Catch::Contains("unknown dtype 'int8'"));
  if (!pth_io_available()) {
    CHECK_THAT(message_of<UsageError>([&] { save_model(m, dir + "/out.pth", "fp32"); }), Catch::Contains("LibTorch"));
  }
}
