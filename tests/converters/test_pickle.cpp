// The restricted unpickler and the state-dict pickler of .pth files (no LibTorch needed):
// round trips, strided views, and hostile pickles that must fail with InputError, never crash.
#include <cstring>

#include "tests/support/converter_test_helpers.h"
#include "converters/torch_pickle.h"
#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "tests/support/test_support.h"

using namespace rwkvlite;
using namespace rwkvlite::test;
using namespace std::string_literals;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Pickle fragments written the way Python's pickler writes them (protocol 2).
std::string u32le(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}
// Built with += (g++ 12 warns falsely, -Wrestrict, on "literal" + std::string temporaries).
std::string str(const std::string& s) {
  std::string out = "X";
  out += u32le(static_cast<uint32_t>(s.size()));
  out += s;
  return out;
}
// BININT within 32 bits, else LONG1 with 8 bytes.
std::string integer(int64_t v) {
  std::string out;
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out = "J";
    out += u32le(static_cast<uint32_t>(v));
  } else {
    out = "\x8a\x08";
    out.append(8, '\0');
    std::memcpy(&out[2], &v, 8);
  }
  return out;
}
std::string int_tuple(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (int64_t x : v) s += integer(x);
  s += "t";
  return s;
}
// One _rebuild_tensor_v2 call with arbitrary (possibly hostile) geometry.
std::string tensor(const std::string& storage_class, int64_t numel, int64_t offset, const std::vector<int64_t>& size,
                   const std::vector<int64_t>& stride, const std::string& key = "0") {
  return "ctorch._utils\n_rebuild_tensor_v2\n(" + std::string("(") + str("storage") + "ctorch\n" + storage_class + "\n" +
         str(key) + str("cpu") + integer(numel) + "tQ" + integer(offset) + int_tuple(size) + int_tuple(stride) +
         "\x89" + "ccollections\nOrderedDict\n)R" + "tR";
}
std::string dict_of(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string s = "\x80\x02}(";
  for (const auto& [k, v] : items) s += str(k) + v;
  return s + "u.";
}

std::string parse_error(const std::string& pickle) {
  return message_of<InputError>([&] { parse_torch_state_dict(bytes_of(pickle), "'test.pth'"); });
}

}  // namespace

TEST_CASE("state-dict pickles round-trip through the writer and reader", "[pickle]") {
  const std::vector<TorchPickleEntry> entries = {
      {"emb.weight", DenseDtype::BF16, {256, 64}},
      {"blocks.0.att.time_mix_k", DenseDtype::F32, {1, 1, 64}},
      {"scalar", DenseDtype::F16, {}},
      {"big", DenseDtype::F32, {70000, 300, 5}},
      {"huge", DenseDtype::F32, {3'000'000'000LL}},  // beyond 32 bits: LONG1
      {"empty", DenseDtype::F32, {0, 4}},
  };
  const std::vector<uint8_t> p = pickle_torch_state_dict(entries);
  CHECK(pickle_torch_state_dict(entries) == p);  // deterministic
  const std::vector<TorchTensorRef> refs = parse_torch_state_dict(p, "test");
  REQUIRE(refs.size() == entries.size());
  for (size_t i = 0; i < refs.size(); ++i) {
    INFO(entries[i].name);
    CHECK(refs[i].name == entries[i].name);
    CHECK(refs[i].dtype == entries[i].dtype);
    CHECK(refs[i].shape == entries[i].shape);
    CHECK(refs[i].storage_key == std::to_string(i));
    CHECK(refs[i].storage_offset == 0);
    CHECK(refs[i].storage_numel == Tensor::numel_of(entries[i].shape));
    std::vector<int64_t> stride(entries[i].shape.size());
    int64_t s = 1;
    for (size_t d = stride.size(); d-- > 0;) {
      stride[d] = s;
      s *= entries[i].shape[d];
    }
    CHECK(refs[i].stride == stride);
  }
  CHECK(torch_storage_bytes(refs[0]) == 256 * 64 * 2);
}

TEST_CASE("single-entry and batched dicts use SETITEM and SETITEMS as Python does", "[pickle]") {
  const std::vector<uint8_t> one = pickle_torch_state_dict({{"w", DenseDtype::F32, {2}}});
  REQUIRE(one.size() > 2);
  CHECK(one[one.size() - 2] == 's');  // SETITEM, which LibTorch 1.13's unpickler lacks
  CHECK(parse_torch_state_dict(one, "test").size() == 1);

  std::vector<TorchPickleEntry> many;
  for (int i = 0; i < 1001; ++i) many.push_back({std::string("t").append(std::to_string(i)), DenseDtype::F16, {3}});
  const std::vector<TorchTensorRef> refs = parse_torch_state_dict(pickle_torch_state_dict(many), "test");
  REQUIRE(refs.size() == 1001);
  CHECK(refs.back().name == "t1000");
  CHECK(refs.back().storage_key == "1000");
}

TEST_CASE("strided, offset and broadcast views gather in row-major order", "[pickle]") {
  std::vector<float> storage = {0, 1, 2, 3, 4, 5, 6, 7};
  const auto* bytes = reinterpret_cast<const uint8_t*>(storage.data());
  auto ref = [](int64_t offset, std::vector<int64_t> shape, std::vector<int64_t> stride) {
    TorchTensorRef t;
    t.name = "t";
    t.dtype = DenseDtype::F32;
    t.storage_numel = 8;
    t.storage_offset = offset;
    t.shape = std::move(shape);
    t.stride = std::move(stride);
    return t;
  };
  CHECK(gather_torch_tensor(ref(0, {2, 3}, {3, 1}), bytes) == std::vector<float>{0, 1, 2, 3, 4, 5});
  CHECK(gather_torch_tensor(ref(0, {3, 2}, {1, 3}), bytes) == std::vector<float>{0, 3, 1, 4, 2, 5});  // transposed
  CHECK(gather_torch_tensor(ref(5, {3}, {1}), bytes) == std::vector<float>{5, 6, 7});                // offset
  CHECK(gather_torch_tensor(ref(1, {2, 2}, {0, 2}), bytes) == std::vector<float>{1, 3, 1, 3});        // broadcast
  CHECK(gather_torch_tensor(ref(2, {1, 3, 1}, {99, 1, 7}), bytes) == std::vector<float>{2, 3, 4});   // size-1 dims
  CHECK(gather_torch_tensor(ref(0, {}, {}), bytes) == std::vector<float>{0});                        // scalar

  std::vector<uint16_t> halves = {float_to_bf16(1.5f), float_to_bf16(-2.0f), float_to_bf16(3.25f)};
  TorchTensorRef b = ref(0, {3}, {2});
  b.shape = {2};
  b.dtype = DenseDtype::BF16;
  b.storage_numel = 3;
  CHECK(gather_torch_tensor(b, reinterpret_cast<const uint8_t*>(halves.data())) == std::vector<float>{1.5f, 3.25f});
}

TEST_CASE("pickles that are not a dict of float tensors say what they hold", "[pickle]") {
  struct Case {
    const char* name;
    std::string pickle;
    const char* fragment;
  };
  const std::vector<Case> cases = {
      {"list", "\x80\x02]q\x00(K\x01K\x02" "e."s, "holds a list of 2 items, not a dict of tensors"},
      {"integer", "\x80\x02K\x05."s, "holds an integer"},
      {"module object", "\x80\x02" "c__main__\nRWKV\nq\x00)\x81q\x01}q\x02" "b."s,
       "a Python object of class '__main__.RWKV' (a whole module or a training checkpoint?)"},
      {"TorchScript", "\x80\x02" "c__torch__.model\nRWKV\n)\x81}b."s, "TorchScript"},
      {"called function", "\x80\x02" "cos\nsystem\n"s + str("echo hi") + "\x85R.",
       "a Python object of class 'os.system'"},
      {"non-tensor entry", dict_of({{"a", "K\x01"}}), "entry 'a' is an integer, not a tensor"},
      {"nested state dict", dict_of({{"state_dict", "}"}}), "training checkpoint? save its 'state_dict' entry"},
      {"empty dict", "\x80\x02}."s, "empty dict"},
      {"int64 tensor", dict_of({{"w", tensor("LongStorage", 4, 0, {4}, {1})}}), "tensor 'w' has dtype int64"},
      {"float64 tensor", dict_of({{"w", tensor("DoubleStorage", 4, 0, {4}, {1})}}), "has dtype float64"},
      {"unknown storage", dict_of({{"w", tensor("FancyStorage", 4, 0, {4}, {1})}}), "storage type torch.FancyStorage"},
      {"non-string key", "\x80\x02}K\x01"s + tensor("FloatStorage", 1, 0, {1}, {1}) + "s.", "key that is an integer"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK_THAT(parse_error(c.pickle), Catch::Contains(c.fragment));
  }
}

TEST_CASE("tensor views must stay inside their storage", "[pickle]") {
  struct Case {
    const char* name;
    std::string tensor;
    const char* fragment;
  };
  const std::vector<Case> cases = {
      {"beyond the storage", tensor("FloatStorage", 4, 0, {3, 2}, {2, 1}), "reads element 5 of storage '0', which has only 4"},
      {"offset beyond", tensor("FloatStorage", 4, 4, {1}, {1}), "reads element 4"},
      {"negative offset", tensor("FloatStorage", 4, -1, {1}, {1}), "negative storage offset"},
      {"negative size", tensor("FloatStorage", 4, 0, {-1}, {1}), "negative size"},
      {"negative stride", tensor("FloatStorage", 4, 3, {2}, {-1}), "negative stride"},
      {"rank mismatch", tensor("FloatStorage", 4, 0, {2, 2}, {2}), "2 sizes but 1 strides"},
      {"size overflow", tensor("FloatStorage", 4, 0, {int64_t{1} << 32, int64_t{1} << 32}, {1, 1}), "size too large"},
      {"stride overflow", tensor("FloatStorage", 4, 0, {3}, {int64_t{1} << 62}), "beyond any storage"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK_THAT(parse_error(dict_of({{"w", c.tensor}})), Catch::Contains(c.fragment));
  }
  // Two tensors sharing a storage are fine when they agree about it.
  CHECK(parse_torch_state_dict(bytes_of(dict_of({{"a", tensor("FloatStorage", 4, 0, {2}, {1})},
                                                 {"b", tensor("FloatStorage", 4, 2, {2}, {1})}})),
                               "test")
            .size() == 2);
  CHECK_THAT(parse_error(dict_of({{"a", tensor("FloatStorage", 4, 0, {2}, {1})},
                                  {"b", tensor("HalfStorage", 4, 2, {2}, {1})}})),
             Catch::Contains("described two different ways"));
}

TEST_CASE("malformed pickles fail cleanly", "[pickle]") {
  struct Case {
    const char* name;
    std::string pickle;
    const char* fragment;
  };
  std::string deep = "\x80\x02)";
  deep += std::string(1'000'000, '\x85');  // a million nested 1-tuples
  deep += ".";
  std::string many = "\x80\x02";
  for (int i = 0; i < 2'000'001; ++i) many += "N0";
  many += "N.";
  const std::vector<Case> cases = {
      {"unsupported opcode", "\x80\x02I01\n."s, "unsupported opcode 0x49"},
      {"memo before write", "\x80\x02h\x05."s, "memo entry 5 is read before it is written"},
      {"stack underflow", "\x80\x02s."s, "needs a value"},
      {"no STOP", "\x80\x02}"s, "truncated"},
      {"huge string length", "\x80\x02X\xff\xff\xff\x7f" "abc."s, "truncated"},
      {"two values left", "\x80\x02K\x01K\x02."s, "2 values on its stack"},
      {"SETITEMS on a list", "\x80\x02](K\x01K\x02u."s, "SETITEMS applied to a list"},
      {"cyclic list", "\x80\x02]q\x00h\x00" "a."s, "a list of 1 items"},
      {"deep nesting", deep, "a tuple of 1 items"},
      {"too many values", many, "more than 2000000 values"},
      {"huge integer", "\x80\x02\x8a\x09"s + std::string(9, '\x01') + ".", "too large"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK_THAT(parse_error(c.pickle), Catch::Contains(c.fragment));
  }

  // Every truncation and every single-bit flip of a valid pickle either parses or throws
  // InputError: no crash, no other exception.
  const std::vector<uint8_t> valid = pickle_torch_state_dict(
      {{"a", DenseDtype::F32, {2, 3}}, {"b", DenseDtype::BF16, {4}}, {"c", DenseDtype::F16, {1, 1, 5}}});
  size_t rejected = 0, accepted = 0;
  for (size_t n = 0; n < valid.size(); ++n) {
    try {
      parse_torch_state_dict(std::vector<uint8_t>(valid.begin(), valid.begin() + static_cast<ptrdiff_t>(n)), "t");
      ++accepted;
    } catch (const InputError&) {
      ++rejected;
    }
  }
  CHECK(accepted == 0);
  for (size_t i = 0; i < valid.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> flipped = valid;
      flipped[i] ^= static_cast<uint8_t>(1u << bit);
      try {
        parse_torch_state_dict(flipped, "t");
        ++accepted;
      } catch (const InputError&) {
        ++rejected;
      }
    }
  }
  CHECK(rejected > valid.size());
  WARN("pickle fuzz: " << rejected << " variants rejected, " << accepted << " accepted, none crashed");
}
