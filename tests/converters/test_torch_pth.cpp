// .pth reader/writer (links LibTorch): bit-exact round trips on every tiny model, F16/BF16,
// files written by Python's own torch.save (OrderedDict, non-contiguous, shared storage, bf16,
// fp16), our files read back by Python's torch.load, and malformed archives.
#include <sys/wait.h>

#include <caffe2/serialize/inline_container.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/support/converter_test_helpers.h"
#include "converters/model_io.h"
#include "converters/pth_file.h"
#include "converters/rwkvcpp_file.h"
#include "converters/safetensors_file.h"
#include "converters/torch_pickle.h"
#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;

namespace {

constexpr const char* kPython = "/usr/bin/python3";

float rounded(float v, DenseDtype t) {
  switch (t) {
    case DenseDtype::F16: return fp16_to_float(float_to_fp16(v));
    case DenseDtype::BF16: return bf16_to_float(float_to_bf16(v));
    default: return v;
  }
}

// Elements of `got` that are not exactly `want` rounded to `t`.
size_t count_not_rounded(const Tensor& want, const Tensor& got, DenseDtype t) {
  if (want.shape != got.shape) return want.data.size();
  size_t n = 0;
  for (size_t i = 0; i < want.data.size(); ++i) {
    const float r = rounded(want.data[i], t);
    n += std::memcmp(&r, &got.data[i], 4) != 0;
  }
  return n;
}

// ---- Python ----

bool python_torch_available() {
  static const bool available = [] {
    const std::string cmd = std::string(kPython) + " -c 'import torch, numpy' >/dev/null 2>&1";
    return exists(kPython) && std::system(cmd.c_str()) == 0;
  }();
  return available;
}

// Runs a Python script (written to the scratch directory) with arguments; returns its exit
// status and leaves its output in `output`.
int run_python(const std::string& name, const std::string& script, const std::vector<std::string>& args,
               std::string& output) {
  const std::string script_path = scratch_dir() + "/" + name + ".py";
  const std::string log_path = scratch_dir() + "/" + name + ".log";
  write_text(script_path, script);
  std::string cmd = std::string(kPython) + " " + script_path;
  for (const std::string& a : args) cmd += " '" + a + "'";
  cmd += " >" + log_path + " 2>&1";
  const int status = std::system(cmd.c_str());
  const std::vector<uint8_t> log = read_bytes(log_path);
  output.assign(log.begin(), log.end());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define RWKVLITE_REQUIRE_PYTHON_TORCH_OR_SKIP()                                            \
  do {                                                                                     \
    if (!python_torch_available()) {                                                       \
      WARN("skipped: " << kPython << " with torch and numpy is not available");            \
      return;                                                                              \
    }                                                                                      \
  } while (0)

// Shared by the scripts: a safetensors file parsed with numpy (no safetensors package here).
const char* const kReadSafetensorsPy = R"(
import json, struct
def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    names = sorted((k for k in header if k != '__metadata__'), key=lambda k: header[k]['data_offsets'][0])
    return header, data, names
)";

// Checks a .pth we wrote against the safetensors file we wrote from the same model in the same
// dtype: plain dict, same names in the same order, dtypes, shapes, contiguity and every bit.
const char* const kCheckPthPy = R"(
import sys, torch
pth, st = sys.argv[1], sys.argv[2]
header, data, names = read_safetensors(st)
sd = torch.load(pth, weights_only=True)
assert type(sd) is dict, type(sd)
assert list(sd.keys()) == names, (list(sd.keys())[:4], names[:4])
dtypes = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}
bits = {'F32': torch.int32, 'F16': torch.int16, 'BF16': torch.int16}
for k in names:
    h, t = header[k], sd[k]
    assert type(t) is torch.Tensor and not t.requires_grad, k
    assert list(t.shape) == h['shape'], (k, t.shape, h['shape'])
    assert t.dtype == dtypes[h['dtype']], (k, t.dtype)
    assert t.is_contiguous(), k
    b, e = h['data_offsets']
    assert t.view(bits[h['dtype']]).numpy().tobytes() == data[b:e], k
print('python checked', len(names), 'tensors')
)";

// Writes the model of an F32 safetensors file the way training code does: torch.save of an
// OrderedDict state dict with _metadata, with a transposed (non-contiguous) head, a bfloat16
// embedding, a float16 matrix, and ln_out's weight and bias viewing one shared storage.
const char* const kTorchSavePy = R"(
import sys, collections, numpy as np, torch
src, out = sys.argv[1], sys.argv[2]
header, data, names = read_safetensors(src)
sd = collections.OrderedDict()
for k in names:
    h = header[k]
    assert h['dtype'] == 'F32'
    b, e = h['data_offsets']
    sd[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype='<f4').reshape(h['shape']).copy())
sd['head.weight'] = sd['head.weight'].t().contiguous().t()
assert not sd['head.weight'].is_contiguous()
sd['emb.weight'] = sd['emb.weight'].to(torch.bfloat16)
sd['blocks.0.ffn.key.weight'] = sd['blocks.0.ffn.key.weight'].half()
both = torch.cat([sd['ln_out.weight'], sd['ln_out.bias']])
d = sd['ln_out.weight'].numel()
sd['ln_out.weight'], sd['ln_out.bias'] = both[:d], both[d:]
assert sd['ln_out.bias'].storage_offset() == d
sd._metadata = collections.OrderedDict([('', {'version': 1})])
torch.save(sd, out)
print('torch.save wrote', len(sd), 'tensors')
)";

// Files that are not state dicts, written by torch itself.
const char* const kBadPthPy = R"(
import sys, collections, torch
d = sys.argv[1]
torch.save([torch.ones(2)], d + '/list.pth')
torch.save({'a': torch.arange(3)}, d + '/int64.pth')
torch.save(torch.nn.Linear(2, 2), d + '/module.pth')
torch.save({'w': torch.ones(2)}, d + '/legacy.pth', _use_new_zipfile_serialization=False)
torch.save({'state_dict': {'w': torch.ones(2)}, 'epoch': 3}, d + '/training.pth')
)";

// ---- crafted archives ----

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::string make_archive(const std::string& name, const std::vector<std::pair<std::string, std::vector<uint8_t>>>& records) {
  std::vector<uint8_t> bytes;
  {
    caffe2::serialize::PyTorchStreamWriter w([&](const void* d, size_t n) {
      const auto* p = static_cast<const uint8_t*>(d);
      bytes.insert(bytes.end(), p, p + n);
      return n;
    });
    for (const auto& [record, data] : records) w.writeRecord(record, data.data(), data.size());
    w.writeEndOfFile();
  }
  const std::string path = scratch_dir() + "/" + name;
  write_bytes(path, bytes);
  return path;
}

std::string pth_error(const std::string& path) { return message_of<InputError>([&] { read_pth(path); }); }

}  // namespace

TEST_CASE("rwkv.cpp -> .pth -> canonical and .pth -> safetensors -> .pth are bit-exact", "[pth]") {
  size_t models = 0, tensors_direct = 0, tensors_via_safetensors = 0;
  for (const TinyModel* tm : available_models()) {
    INFO(tm->stem);
    const Model original = read_rwkvcpp(tiny_model_path(tm->stem, "FP32"));
    const std::string pth = scratch_dir() + "/" + tm->stem + ".pth";
    write_pth(original, pth, PthDtype::F32);
    const Model direct = read_pth(pth);
    CHECK(direct.arch == original.arch);
    CHECK(direct.source_format == "pth");
    CHECK(direct.source_dtypes.at("emb.weight") == "float32");
    CHECK(direct.ln_x_eps == default_ln_x_eps(direct.arch));  // .pth carries no epsilon
    ModelComparison c = compare_models(original, direct);
    CHECK(c.same_names_and_shapes);
    CHECK(c.elements_differing == 0);
    tensors_direct += c.tensors_bit_exact;

    const std::string st = scratch_dir() + "/" + tm->stem + "-from-pth.safetensors";
    write_safetensors(direct, st, SafetensorsDtype::F32);
    const std::string pth2 = scratch_dir() + "/" + tm->stem + "-again.pth";
    write_pth(read_safetensors(st), pth2, PthDtype::F32);
    const Model again = read_pth(pth2);
    c = compare_models(original, again);
    CHECK(c.same_names_and_shapes);
    CHECK(c.elements_differing == 0);
    tensors_via_safetensors += c.tensors_bit_exact;
    CHECK(read_bytes(pth) == read_bytes(pth2));  // same model, same bytes
    ++models;
  }
  WARN(".pth round trips: " << models << " models; " << tensors_direct << " tensors bit-exact rwkv.cpp->pth->canonical, "
                            << tensors_via_safetensors << " bit-exact pth->safetensors->pth");
}

TEST_CASE("F16 and BF16 .pth files hold exactly the rounded values", "[pth]") {
  for (const TinyModel* tm : available_models()) {
    const Model m = read_rwkvcpp(tiny_model_path(tm->stem, "FP32"));
    for (PthDtype dtype : {PthDtype::F16, PthDtype::BF16}) {
      INFO(tm->stem << " " << torch_dtype_name(dtype));
      const std::string path = scratch_dir() + "/" + tm->stem + "-" + torch_dtype_name(dtype) + ".pth";
      write_pth(m, path, dtype);
      const Model r = read_pth(path);
      size_t wrong = 0;
      for (const auto& [name, t] : m.tensors) {
        CHECK(r.source_dtypes.at(name) == torch_dtype_name(dtype));
        wrong += count_not_rounded(t, r.at(name), dtype);
      }
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE(".pth files are deterministic torch.save archives", "[pth]") {
  const Model m = read_rwkvcpp(tiny_model_path("7v0-834K", "FP32"));
  const std::string a = scratch_dir() + "/det-a.pth", b = scratch_dir() + "/det-b.pth";
  write_pth(m, a, PthDtype::BF16);
  write_pth(m, b, PthDtype::BF16);
  CHECK(read_bytes(a) == read_bytes(b));
  caffe2::serialize::PyTorchStreamReader reader(a);
  CHECK(reader.hasRecord("data.pkl"));
  CHECK(reader.hasRecord("version"));
  CHECK(reader.hasRecord("data/0"));
  CHECK(reader.getAllRecords().size() == m.tensors.size() + 2);
}

TEST_CASE("Python's torch.load reads our .pth files back exactly", "[pth][python]") {
  RWKVLITE_REQUIRE_PYTHON_TORCH_OR_SKIP();
  size_t checked = 0;
  for (const TinyModel* tm : available_models()) {
    const Model m = read_rwkvcpp(tiny_model_path(tm->stem, "FP32"));
    for (DenseDtype dtype : {DenseDtype::F32, DenseDtype::F16, DenseDtype::BF16}) {
      if (dtype != DenseDtype::F32 && std::string(tm->stem) != "7v0-834K") continue;
      INFO(tm->stem << " " << torch_dtype_name(dtype));
      const std::string base = scratch_dir() + "/py-" + tm->stem + "-" + torch_dtype_name(dtype);
      write_pth(m, base + ".pth", dtype);
      write_safetensors(m, base + ".safetensors", dtype);
      std::string out;
      const int status = run_python("check_pth", std::string(kReadSafetensorsPy) + kCheckPthPy,
                                    {base + ".pth", base + ".safetensors"}, out);
      INFO(out);
      CHECK(status == 0);
      checked += status == 0;
    }
  }
  WARN("Python torch.load(weights_only=True) verified " << checked << " .pth files bit for bit");
}

TEST_CASE("checkpoints written by Python's torch.save read exactly", "[pth][python]") {
  RWKVLITE_REQUIRE_PYTHON_TORCH_OR_SKIP();
  for (const TinyModel* tm : available_models()) {
    INFO(tm->stem);
    const Model m = read_rwkvcpp(tiny_model_path(tm->stem, "FP32"));
    const std::string st = scratch_dir() + "/torchsave-" + tm->stem + ".safetensors";
    const std::string pth = scratch_dir() + "/torchsave-" + tm->stem + ".pth";
    write_safetensors(m, st, SafetensorsDtype::F32);
    std::string out;
    const int status = run_python("torch_save", std::string(kReadSafetensorsPy) + kTorchSavePy, {st, pth}, out);
    INFO(out);
    REQUIRE(status == 0);

    const Model r = read_pth(pth);
    CHECK(r.source_dtypes.at("emb.weight") == "bfloat16");
    CHECK(r.source_dtypes.at("blocks.0.ffn.key.weight") == "float16");
    CHECK(r.source_dtypes.at("head.weight") == "float32");
    size_t exact = 0, wrong = 0;
    for (const auto& [name, t] : m.tensors) {
      const DenseDtype expect = name == "emb.weight"                ? DenseDtype::BF16
                                : name == "blocks.0.ffn.key.weight" ? DenseDtype::F16
                                                                     : DenseDtype::F32;
      const size_t n = count_not_rounded(t, r.at(name), expect);
      wrong += n;
      exact += n == 0;
    }
    CHECK(wrong == 0);
    CHECK(exact == m.tensors.size());

    // Python re-saving our own file (torch.load then torch.save) changes nothing either.
    const std::string ours = scratch_dir() + "/ours-" + tm->stem + ".pth";
    const std::string resaved = scratch_dir() + "/resaved-" + tm->stem + ".pth";
    write_pth(m, ours, PthDtype::F32);
    REQUIRE(run_python("resave", "import sys, torch\ntorch.save(torch.load(sys.argv[1]), sys.argv[2])\n",
                       {ours, resaved}, out) == 0);
    CHECK(compare_models(m, read_pth(resaved)).elements_differing == 0);
  }
}

TEST_CASE("torch.save files that are not a state dict of float tensors are explained", "[pth][python]") {
  RWKVLITE_REQUIRE_PYTHON_TORCH_OR_SKIP();
  const std::string dir = scratch_dir();
  std::string out;
  REQUIRE(run_python("bad_pth", kBadPthPy, {dir}, out) == 0);
  CHECK_THAT(pth_error(dir + "/list.pth"), Catch::Contains("holds a list of 1 items, not a dict of tensors"));
  CHECK_THAT(pth_error(dir + "/int64.pth"), Catch::Contains("tensor 'a' has dtype int64"));
  CHECK_THAT(pth_error(dir + "/module.pth"), Catch::Contains("torch.nn.modules.linear.Linear"));
  CHECK_THAT(pth_error(dir + "/legacy.pth"), Catch::Contains("legacy PyTorch checkpoint") && Catch::Contains("re-save"));
  CHECK_THAT(pth_error(dir + "/training.pth"), Catch::Contains("entry 'state_dict' is a dict"));
}

TEST_CASE("malformed .pth archives are rejected with InputError", "[pth]") {
  const Model m = read_rwkvcpp(tiny_model_path("5v2-730K", "FP32"));
  const std::string good = scratch_dir() + "/good.pth";
  write_pth(m, good, PthDtype::F16);
  const std::vector<uint8_t> bytes = read_bytes(good);

  for (size_t cut : {size_t{10}, size_t{100}, bytes.size() / 2, bytes.size() - 30, bytes.size() - 1}) {
    INFO("truncated at " << cut);
    const std::string path = scratch_dir() + "/truncated.pth";
    write_bytes(path, bytes.data(), cut);
    CHECK_THAT(pth_error(path), Catch::Contains("corrupt or foreign zip archive"));
  }

  CHECK_THAT(pth_error(make_archive("no-pkl.pth", {{"weights.bin", {1, 2, 3, 4}}})),
             Catch::Contains("zip archive without data.pkl") && Catch::Contains("weights.bin"));

  const std::string list_pickle = std::string("\x80\x02]q\x00(K\x01K\x02", 10) + "e.";
  CHECK_THAT(pth_error(make_archive("list.pth", {{"data.pkl", bytes_of(list_pickle)}})),
             Catch::Contains("holds a list of 2 items, not a dict of tensors"));

  const std::vector<uint8_t> pickle = pickle_torch_state_dict({{"w", DenseDtype::F32, {2, 2}}});
  CHECK_THAT(pth_error(make_archive("no-storage.pth", {{"data.pkl", pickle}})),
             Catch::Contains("has no record data/0 (the storage of tensor 'w')"));
  CHECK_THAT(pth_error(make_archive("short-storage.pth", {{"data.pkl", pickle}, {"data/0", std::vector<uint8_t>(12)}})),
             Catch::Contains("record data/0 declares 12 bytes in the zip directory but tensor 'w' says its storage has 16"));
  // A valid archive of a non-RWKV dict gets as far as model validation.
  CHECK_THROWS_AS(read_pth(make_archive("not-rwkv.pth", {{"data.pkl", pickle}, {"data/0", std::vector<uint8_t>(16)}})),
                  InputError);

  const std::string text = scratch_dir() + "/text.pth";
  write_text(text, "just some notes\n");
  CHECK_THAT(pth_error(text), Catch::Contains("is not a PyTorch .pth checkpoint") && Catch::Contains("text"));
  const std::string legacy = scratch_dir() + "/legacy.pth";
  write_bytes(legacy, std::vector<uint8_t>{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8});
  CHECK_THAT(pth_error(legacy), Catch::Contains("legacy PyTorch checkpoint"));
}

TEST_CASE("write_pth refuses values beyond fp16 and leaves nothing behind", "[pth]") {
  Model m = read_rwkvcpp(tiny_model_path("7v0-834K", "FP32"));
  m.at("head.weight").data[0] = -1e5f;
  const std::string path = scratch_dir() + "/overflow.pth";
  CHECK_THAT(message_of<UsageError>([&] { write_pth(m, path, PthDtype::F16); }), Catch::Contains("head.weight"));
  CHECK_FALSE(exists(path));
  write_pth(m, path, PthDtype::BF16);  // and the writer is still usable afterwards
  CHECK(read_pth(path).at("head.weight").data[0] == bf16_to_float(float_to_bf16(-1e5f)));
}

TEST_CASE("load_model and save_model handle .pth once LibTorch support is enabled", "[pth][model_io]") {
  enable_pth_support();
  REQUIRE(pth_io_available());
  const Model m = load_model(tiny_model_path("7v0-834K", "FP32"));
  const std::string pth = scratch_dir() + "/io.pth", pt = scratch_dir() + "/io.pt";
  save_model(m, pth, "fp32");
  save_model(m, pt, "bf16");
  CHECK(detect_model_file(pth) == ModelFileKind::PthZip);
  CHECK(compare_models(m, load_model(pth)).elements_differing == 0);
  CHECK(load_model(pt).source_dtypes.at("emb.weight") == "bfloat16");
  LoadOptions options;
  options.ln_x_eps = 1e-5f;
  CHECK(load_model(pth, options).ln_x_eps == 1e-5f);
  const std::string legacy = scratch_dir() + "/legacy-io.pth";
  write_bytes(legacy, std::vector<uint8_t>{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8});
  CHECK_THAT(message_of<InputError>([&] { load_model(legacy); }), Catch::Contains("re-save"));
}
