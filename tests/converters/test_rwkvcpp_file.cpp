// rwkv.cpp reader/writer on the real tiny models: dimensions, transforms, dtypes, round trips.
#include <cmath>
#include <cstring>
#include <fstream>

#include "converters/rwkvcpp_file.h"
#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "tests/support/converter_test_helpers.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

struct ExpectedDims {
  const char* stem;
  ArchVersion arch;
  int64_t layers, embd, heads, ffn;
  int64_t params;  // from the models' README
};
const ExpectedDims kDims[] = {
    {"4v0-660K", ArchVersion::V4, 4, 128, 0, 256, 661504},
    {"5v1-730K", ArchVersion::V5_1, 12, 64, 8, 256, 680640},
    {"5v2-730K", ArchVersion::V5_2, 12, 64, 8, 256, 731904},
    {"6v0-1m", ArchVersion::V6, 12, 64, 8, 224, 1028352},
    {"7v0-834K", ArchVersion::V7, 12, 64, 1, 256, 829888},
};

}  // namespace

TEST_CASE("rwkv.cpp FP32 files read with the right architecture and dimensions", "[rwkvcpp]") {
  for (const auto& e : kDims) {
    const std::string path = tiny_model_path(e.stem, "FP32");
    RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
    INFO(path);
    const Model m = read_rwkvcpp(path);
    CHECK(m.arch == e.arch);
    CHECK(m.dims.n_layer == e.layers);
    CHECK(m.dims.n_embd == e.embd);
    CHECK(m.dims.n_head == e.heads);
    CHECK(m.dims.ffn_size == e.ffn);
    CHECK(m.dims.n_vocab == 256);
    // The README's counts omit v7's unused layer-0 value LoRA, which the file does not carry.
    CHECK(m.parameter_count() == e.params);
  }
}

TEST_CASE("every dtype of every tiny model reads and stays close to FP32", "[rwkvcpp]") {
  // Bounds on max |w - w_fp32| over all weights: FP16 rounding is < 2^-11 relative; Q5 blocks
  // of 32 carry an error up to half a step of (max-min)/31.
  for (const auto& e : kDims) {
    const std::string ref_path = tiny_model_path(e.stem, "FP32");
    RWKVLITE_REQUIRE_FILE_OR_SKIP(ref_path);
    const Model ref = read_rwkvcpp(ref_path);
    for (const char* dtype : {"FP16", "Q5_0", "Q5_1"}) {
      const std::string path = tiny_model_path(e.stem, dtype);
      RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
      INFO(path);
      const Model m = read_rwkvcpp(path);
      REQUIRE(m.arch == ref.arch);
      double max_rel = 0;
      for (const auto& [name, t] : ref.tensors) {
        const Tensor& q = m.at(name);
        REQUIRE(q.shape == t.shape);
        // Relative to the tensor's largest magnitude, with an absolute floor: v4's channel-mix
        // weights are ~3e-7, below fp16's normal range, where only absolute error is meaningful.
        double scale = 0;
        for (float v : t.data) scale = std::max(scale, static_cast<double>(std::fabs(v)));
        for (size_t i = 0; i < t.data.size(); ++i) {
          const double err = std::fabs(static_cast<double>(q.data[i]) - t.data[i]);
          max_rel = std::max(max_rel, err / std::max(scale, 1e-4));
        }
      }
      // Max error relative to each tensor's largest magnitude.
      CHECK(max_rel < (std::string(dtype) == "FP16" ? 1e-3 : 0.08));
    }
  }
}

TEST_CASE("rwkv.cpp write then read reproduces stored tensors bit for bit", "[rwkvcpp]") {
  for (const auto& e : kDims) {
    const std::string path = tiny_model_path(e.stem, "FP32");
    RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
    INFO(path);
    const RwkvCppRawFile original = read_rwkvcpp_raw(path);
    const Model m = read_rwkvcpp(path);
    const std::string out = scratch_dir() + "/" + e.stem + "-rt.bin";
    write_rwkvcpp(m, out, RwkvCppType::FP32);
    const RwkvCppRawFile again = read_rwkvcpp_raw(out);
    REQUIRE(again.tensors.size() == original.tensors.size());
    std::map<std::string, const RwkvCppRawTensor*> by_name;
    for (const auto& t : again.tensors) by_name[t.name] = &t;
    size_t differing = 0;
    for (const auto& t : original.tensors) {
      INFO(t.name);
      REQUIRE(by_name.count(t.name));
      CHECK(by_name[t.name]->shape == t.shape);
      differing += count_bit_differences(t.data, by_name[t.name]->data);
    }
    CHECK(differing == 0);
    // And the canonical model read back is identical too.
    const Model m2 = read_rwkvcpp(out);
    for (const auto& [name, t] : m.tensors) CHECK(count_bit_differences(t.data, m2.at(name).data) == 0);
  }
}

TEST_CASE("rwkv.cpp FP16 writing keeps vectors FP32 and halves matrices", "[rwkvcpp]") {
  const std::string path = tiny_model_path("7v0-834K", "FP32");
  RWKVLITE_REQUIRE_FILE_OR_SKIP(path);
  const Model m = read_rwkvcpp(path);
  const std::string out = scratch_dir() + "/v7-fp16.bin";
  write_rwkvcpp(m, out, RwkvCppType::FP16);
  const RwkvCppRawFile f = read_rwkvcpp_raw(out);
  const std::string shared16 = tiny_model_path("7v0-834K", "FP16");
  if (exists(shared16)) {
    // Same per-tensor type choice and the same file size as rwkv.cpp's own converter.
    const RwkvCppRawFile ref = read_rwkvcpp_raw(shared16);
    std::map<std::string, RwkvCppType> ref_types;
    for (const auto& t : ref.tensors) ref_types[t.name] = t.type;
    for (const auto& t : f.tensors) CHECK(ref_types.at(t.name) == t.type);
    CHECK(file_size_or_throw(out) == file_size_or_throw(shared16));
  }
  for (const auto& t : f.tensors) {
    if (t.name == "emb.weight" || t.name == "blocks.3.att.key.weight") CHECK(t.type == RwkvCppType::FP16);
    if (t.name == "blocks.3.att.x_rwkvag" || t.name == "ln_out.weight") CHECK(t.type == RwkvCppType::FP32);
  }
}

TEST_CASE("decay transforms invert exactly", "[rwkvcpp]") {
  for (float w : {-8.0f, -3.3f, -0.5f, 0.0f, 0.7f, 1.9f, 2.5f}) {
    CHECK(rwkvcpp_stored_decay_v5(rwkvcpp_canonical_decay_v5(rwkvcpp_stored_decay_v5(w))) == rwkvcpp_stored_decay_v5(w));
    CHECK(rwkvcpp_stored_decay_v4(rwkvcpp_canonical_decay_v4(rwkvcpp_stored_decay_v4(w))) == rwkvcpp_stored_decay_v4(w));
    CHECK(rwkvcpp_stored_first_v5_1(rwkvcpp_canonical_first_v5_1(rwkvcpp_stored_first_v5_1(w))) ==
          rwkvcpp_stored_first_v5_1(w));
  }
}
