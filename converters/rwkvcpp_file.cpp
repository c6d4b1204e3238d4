#include "converters/rwkvcpp_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/core/half.h"

namespace rwkvlite {
namespace {

constexpr uint32_t kMagic = 0x67676d66;  // "ggmf" read as a little-endian u32
constexpr int kBlock = 32;               // elements per block of every quantized type
// Sanity bounds that reject hostile headers before anything is allocated.
constexpr int64_t kMaxDim = int64_t{1} << 31;
constexpr int64_t kMaxElements = int64_t{1} << 36;
constexpr int32_t kMaxKeyLength = 1024;

bool valid_type(int32_t t) {
  switch (t) {
    case 0: case 1: case 2: case 3: case 7: case 8: case 9: return true;
    default: return false;
  }
}

bool is_quantized(RwkvCppType t) { return t != RwkvCppType::FP32 && t != RwkvCppType::FP16; }

// Bytes of one 32-element block of a quantized type.
int64_t block_bytes(RwkvCppType t) {
  switch (t) {
    case RwkvCppType::Q4_0: return 2 + 16;
    case RwkvCppType::Q4_1: return 2 + 2 + 16;
    case RwkvCppType::Q5_0: return 2 + 4 + 16;
    case RwkvCppType::Q5_1: return 2 + 2 + 4 + 16;
    case RwkvCppType::Q8_0: return 2 + 32;
    default: return 0;
  }
}

uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t load_u32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

// Dequantizes one block into 32 floats. Layouts are those of ggml at rwkv.cpp file version 101:
// the low nibbles hold elements 0..15 and the high nibbles elements 16..31; Q5 keeps the fifth
// bits of all 32 elements in one little-endian u32.
void dequantize_block(RwkvCppType t, const uint8_t* b, float* out) {
  const float d = fp16_to_float(load_u16(b));
  switch (t) {
    case RwkvCppType::Q4_0: {
      const uint8_t* qs = b + 2;
      for (int j = 0; j < 16; ++j) {
        out[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
        out[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
      }
      break;
    }
    case RwkvCppType::Q4_1: {
      const float m = fp16_to_float(load_u16(b + 2));
      const uint8_t* qs = b + 4;
      for (int j = 0; j < 16; ++j) {
        out[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
        out[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
      }
      break;
    }
    case RwkvCppType::Q5_0: {
      const uint32_t qh = load_u32(b + 2);
      const uint8_t* qs = b + 6;
      for (int j = 0; j < 16; ++j) {
        const int lo = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
        const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
        out[j] = static_cast<float>(lo - 16) * d;
        out[j + 16] = static_cast<float>(hi - 16) * d;
      }
      break;
    }
    case RwkvCppType::Q5_1: {
      const float m = fp16_to_float(load_u16(b + 2));
      const uint32_t qh = load_u32(b + 4);
      const uint8_t* qs = b + 8;
      for (int j = 0; j < 16; ++j) {
        const int lo = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
        const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
        out[j] = static_cast<float>(lo) * d + m;
        out[j + 16] = static_cast<float>(hi) * d + m;
      }
      break;
    }
    case RwkvCppType::Q8_0: {
      const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
      for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(qs[j]) * d;
      break;
    }
    default:
      break;
  }
}

std::string check_name(const std::string& path, const std::string& name, int64_t index) {
  for (unsigned char c : name) {
    if (c < 0x20 || c > 0x7e) {
      throw InputError("'" + path + "': tensor #" + std::to_string(index) + " has a name with non-printable bytes");
    }
  }
  return name;
}

// ---- exactly invertible storage transforms ---------------------------------------------

// Finds the float w whose forward image is exactly `stored`, starting from a guess and
// searching neighbouring floats; falls back to the closest image when none maps exactly
// (possible only for values the writer here cannot produce).
template <typename Forward>
float invert_exactly(float stored, double guess, Forward fwd) {
  float w = static_cast<float>(guess);
  if (fwd(w) == stored) return w;
  float best = w;
  double best_err = std::fabs(static_cast<double>(fwd(w)) - stored);
  float lo = w, hi = w;
  for (int k = 0; k < 512; ++k) {
    lo = std::nextafter(lo, -INFINITY);
    hi = std::nextafter(hi, INFINITY);
    for (float c : {lo, hi}) {
      const float img = fwd(c);
      if (img == stored) return c;
      const double err = std::fabs(static_cast<double>(img) - stored);
      if (err < best_err) {
        best_err = err;
        best = c;
      }
    }
  }
  return best;
}

double clamp_guess(double g, double lo, double hi) {
  if (std::isnan(g)) return 0.0;
  return std::min(std::max(g, lo), hi);
}

}  // namespace

float rwkvcpp_stored_decay_v4(float w) { return static_cast<float>(-std::exp(static_cast<double>(w))); }
float rwkvcpp_stored_decay_v5(float w) { return static_cast<float>(std::exp(-std::exp(static_cast<double>(w)))); }
float rwkvcpp_stored_first_v5_1(float u) { return static_cast<float>(std::exp(static_cast<double>(u))); }

float rwkvcpp_canonical_decay_v4(float s) {
  return invert_exactly(s, clamp_guess(std::log(-static_cast<double>(s)), -100, 80), rwkvcpp_stored_decay_v4);
}
float rwkvcpp_canonical_decay_v5(float s) {
  return invert_exactly(s, clamp_guess(std::log(-std::log(static_cast<double>(s))), -30, 30), rwkvcpp_stored_decay_v5);
}
float rwkvcpp_canonical_first_v5_1(float s) {
  return invert_exactly(s, clamp_guess(std::log(static_cast<double>(s)), -100, 80), rwkvcpp_stored_first_v5_1);
}

const char* rwkvcpp_type_name(RwkvCppType t) {
  switch (t) {
    case RwkvCppType::FP32: return "FP32";
    case RwkvCppType::FP16: return "FP16";
    case RwkvCppType::Q4_0: return "Q4_0";
    case RwkvCppType::Q4_1: return "Q4_1";
    case RwkvCppType::Q5_0: return "Q5_0";
    case RwkvCppType::Q5_1: return "Q5_1";
    case RwkvCppType::Q8_0: return "Q8_0";
  }
  return "unknown";
}

RwkvCppRawFile read_rwkvcpp_raw(const std::string& path) {
  InputFile file(path);
  if (file.size() < 24) {
    throw InputError("'" + path + "' is not an rwkv.cpp model: it has only " + std::to_string(file.size()) +
                     " bytes (" + describe_file_contents(path) + ")");
  }
  SequentialReader in(file);
  const auto magic = in.read_pod<uint32_t>("the file magic");
  if (magic != kMagic) {
    throw InputError("'" + path + "' is not an rwkv.cpp model (no 'ggmf' magic): it looks like " +
                     describe_file_contents(path));
  }
  RwkvCppRawFile raw;
  raw.version = in.read_pod<int32_t>("the file version");
  if (raw.version != 100 && raw.version != 101) {
    throw InputError("'" + path + "': unsupported rwkv.cpp file version " + std::to_string(raw.version) +
                     " (supported: 100, 101)");
  }
  const auto n_vocab = in.read_pod<int32_t>("the header");
  const auto n_embed = in.read_pod<int32_t>("the header");
  const auto n_layer = in.read_pod<int32_t>("the header");
  const auto data_type = in.read_pod<int32_t>("the header");
  if (n_vocab <= 0 || n_vocab > (1 << 24) || n_embed <= 0 || n_embed > (1 << 18) || n_layer <= 0 || n_layer > 4096) {
    throw InputError("'" + path + "': implausible header dimensions (n_vocab " + std::to_string(n_vocab) +
                     ", n_embed " + std::to_string(n_embed) + ", n_layer " + std::to_string(n_layer) + ")");
  }
  if (!valid_type(data_type)) {
    throw InputError("'" + path + "': unknown or removed model data type " + std::to_string(data_type) +
                     " (supported: FP32, FP16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0)");
  }
  raw.n_vocab = n_vocab;
  raw.n_embed = n_embed;
  raw.n_layer = n_layer;
  raw.data_type = static_cast<RwkvCppType>(data_type);
  if (is_quantized(raw.data_type) && raw.version == 100) {
    throw InputError("'" + path + "': quantized files of version 100 use a ggml layout that was removed; requantize "
                     "the model from its FP32 or FP16 file");
  }

  std::set<std::string> seen;
  std::vector<uint8_t> buffer;
  while (!in.at_end()) {
    const int64_t index = static_cast<int64_t>(raw.tensors.size());
    const std::string where = "tensor #" + std::to_string(index);
    const auto dim_count = in.read_pod<int32_t>("a tensor header");
    const auto key_length = in.read_pod<int32_t>("a tensor header");
    const auto type = in.read_pod<int32_t>("a tensor header");
    if (dim_count < 1 || dim_count > 3) {
      throw InputError("'" + path + "': " + where + " has " + std::to_string(dim_count) + " dimensions (expected 1 to 3)");
    }
    if (key_length < 1 || key_length > kMaxKeyLength) {
      throw InputError("'" + path + "': " + where + " has a name length of " + std::to_string(key_length));
    }
    if (!valid_type(type)) {
      throw InputError("'" + path + "': " + where + " has unknown or removed data type " + std::to_string(type));
    }
    RwkvCppRawTensor t;
    t.type = static_cast<RwkvCppType>(type);
    if (is_quantized(t.type) && raw.version == 100) {
      throw InputError("'" + path + "': " + where + " is quantized in the removed version-100 layout");
    }
    std::vector<int64_t> file_dims(static_cast<size_t>(dim_count));
    int64_t numel = 1;
    for (auto& d : file_dims) {
      d = in.read_pod<int32_t>("a tensor shape");
      if (d < 1 || d > kMaxDim) throw InputError("'" + path + "': " + where + " has dimension " + std::to_string(d));
      // Checked before multiplying: kMaxElements * kMaxDim does not fit in 64 bits (fuzz finding).
      if (numel > kMaxElements / d) throw InputError("'" + path + "': " + where + " has an implausibly large shape");
      numel *= d;
    }
    std::string name(static_cast<size_t>(key_length), '\0');
    in.read(name.data(), name.size(), "a tensor name");
    check_name(path, name, index);
    if (!seen.insert(name).second) throw InputError("'" + path + "': tensor '" + name + "' appears twice");
    t.name = name;
    t.shape.assign(file_dims.rbegin(), file_dims.rend());

    int64_t nbytes = 0;
    if (t.type == RwkvCppType::FP32) {
      nbytes = numel * 4;
    } else if (t.type == RwkvCppType::FP16) {
      nbytes = numel * 2;
    } else {
      if (file_dims[0] % kBlock != 0) {
        throw InputError("'" + path + "': quantized tensor '" + name + "' has rows of " + std::to_string(file_dims[0]) +
                         " elements, not a multiple of " + std::to_string(kBlock));
      }
      nbytes = numel / kBlock * block_bytes(t.type);
    }
    if (static_cast<uint64_t>(nbytes) > in.remaining()) {
      throw InputError("'" + path + "' is truncated: tensor '" + name + "' needs " + std::to_string(nbytes) +
                       " bytes but only " + std::to_string(in.remaining()) + " remain");
    }
    buffer.resize(static_cast<size_t>(nbytes));
    in.read(buffer.data(), buffer.size(), "tensor data");
    t.data.resize(static_cast<size_t>(numel));
    if (t.type == RwkvCppType::FP32) {
      std::memcpy(t.data.data(), buffer.data(), buffer.size());
    } else if (t.type == RwkvCppType::FP16) {
      for (int64_t i = 0; i < numel; ++i) t.data[i] = fp16_to_float(load_u16(&buffer[2 * i]));
    } else {
      const int64_t bb = block_bytes(t.type);
      for (int64_t b = 0; b < numel / kBlock; ++b) dequantize_block(t.type, &buffer[b * bb], &t.data[b * kBlock]);
    }
    raw.tensors.push_back(std::move(t));
  }
  if (raw.tensors.empty()) throw InputError("'" + path + "' has a header but no tensors");
  return raw;
}

namespace {


// Transposes the last two axes of a tensor (a batch of matrices when rank is 3).
Tensor transpose_last2(const std::vector<int64_t>& shape, const std::vector<float>& data) {
  const size_t r = shape.size();
  const int64_t rows = shape[r - 2], cols = shape[r - 1];
  const int64_t batch = Tensor::numel_of(shape) / (rows * cols);
  std::vector<int64_t> out_shape = shape;
  std::swap(out_shape[r - 2], out_shape[r - 1]);
  Tensor out(out_shape);
  for (int64_t b = 0; b < batch; ++b) {
    const float* src = &data[b * rows * cols];
    float* dst = &out.data[b * rows * cols];
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) dst[j * rows + i] = src[i * cols + j];
  }
  return out;
}

// Reshape that keeps the stored shape when element counts disagree, so validation reports
// the mismatch against the architecture instead of silently misreading.
std::vector<int64_t> reshape_or_keep(const std::vector<int64_t>& stored, std::vector<int64_t> wanted) {
  return Tensor::numel_of(stored) == Tensor::numel_of(wanted) ? wanted : stored;
}

const char* kV7Mixes[] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};

bool is_v7_lora(const std::string& n) {
  for (const char* s : {".w1", ".w2", ".a1", ".a2", ".v1", ".v2", ".g1", ".g2"}) {
    if (n.ends_with(s)) return true;
  }
  return false;
}

// Canonicalises one stored tensor, adding the result(s) to the model.
void add_canonical(Model& m, ArchVersion arch, int64_t D, RwkvCppRawTensor& t) {
  const std::string& n = t.name;
  const std::vector<int64_t> mix{1, 1, D};
  auto put = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> data) {
    m.tensors[name] = Tensor(std::move(shape), std::move(data));
    m.source_dtypes[name] = rwkvcpp_type_name(t.type);
  };
  auto put_t = [&](const std::string& name, Tensor tt) { put(name, std::move(tt.shape), std::move(tt.data)); };
  auto map_all = [&](float (*f)(float)) {
    for (float& v : t.data) v = f(v);
  };

  const bool is_mix = n.find(".time_mix_") != std::string::npos ||
                      (n.find(".time_maa_") != std::string::npos && !n.ends_with("_w1") && !n.ends_with("_w2"));
  if (is_mix) {
    put(n, reshape_or_keep(t.shape, mix), std::move(t.data));
    return;
  }
  switch (arch) {
    case ArchVersion::V4:
      if (n.ends_with(".att.time_decay")) map_all(rwkvcpp_canonical_decay_v4);
      break;
    case ArchVersion::V5_1:
      if (n.ends_with(".att.time_decay")) {
        map_all(rwkvcpp_canonical_decay_v5);
        put(n, {Tensor::numel_of(t.shape)}, std::move(t.data));
        return;
      }
      if (n.ends_with(".att.time_first")) {
        map_all(rwkvcpp_canonical_first_v5_1);
        put(n, {Tensor::numel_of(t.shape)}, std::move(t.data));
        return;
      }
      break;
    case ArchVersion::V5_2:
    case ArchVersion::V6:
      if (n.ends_with(".att.time_faaaa") || (arch == ArchVersion::V5_2 && n.ends_with(".att.time_decay"))) {
        if (arch == ArchVersion::V5_2 && n.ends_with(".att.time_decay")) map_all(rwkvcpp_canonical_decay_v5);
        std::vector<int64_t> s = t.shape;
        if (s.size() == 3 && s[2] == 1) s.pop_back();  // [H, S, 1] -> [H, S]
        put(n, s, std::move(t.data));
        return;
      }
      if (arch == ArchVersion::V6) {
        if (n.ends_with(".att.time_decay")) {
          put(n, reshape_or_keep(t.shape, mix), std::move(t.data));
          return;
        }
        if (n.ends_with(".att.time_maa_w1") || n.ends_with(".att.time_decay_w1") ||
            n.ends_with(".att.time_decay_w2") || n.ends_with(".att.time_maa_w2")) {
          if (t.shape.size() >= 2) {
            put_t(n, transpose_last2(t.shape, t.data));
            return;
          }
        }
      }
      break;
    case ArchVersion::V7:
      if (n.ends_with(".att.x_rwkvag")) {
        const std::string prefix = n.substr(0, n.size() - std::string("x_rwkvag").size());
        if (Tensor::numel_of(t.shape) != 6 * D) break;  // left as is: validation names it
        for (int i = 0; i < 6; ++i) {
          put(prefix + kV7Mixes[i], mix, std::vector<float>(t.data.begin() + i * D, t.data.begin() + (i + 1) * D));
        }
        return;
      }
      if (is_v7_lora(n) && t.shape.size() == 2) {
        put_t(n, transpose_last2(t.shape, t.data));
        return;
      }
      for (const char* s : {".w0", ".a0", ".v0", ".k_k", ".k_a", ".ffn.x_k"}) {
        if (n.ends_with(s)) {
          put(n, reshape_or_keep(t.shape, mix), std::move(t.data));
          return;
        }
      }
      break;
  }
  put(n, t.shape, std::move(t.data));
}

}  // namespace

Model read_rwkvcpp(const std::string& path) {
  RwkvCppRawFile raw = read_rwkvcpp_raw(path);
  std::set<std::string> raw_names;
  for (const auto& t : raw.tensors) raw_names.insert(t.name);
  const ArchVersion arch = detect_arch(raw_names);
  Model m;
  m.source_format = std::string("rwkv.cpp ") + rwkvcpp_type_name(raw.data_type) + " (file version " +
                    std::to_string(raw.version) + ")";
  // rwkv.cpp evaluates v5 with group-norm epsilon 1e-5 and v6/v7 with 64e-5 (rwkv_graph.inc);
  // its reference logits match only with those values.
  m.ln_x_eps = (arch == ArchVersion::V5_1 || arch == ArchVersion::V5_2) ? 1e-5f : 64e-5f;
  for (auto& t : raw.tensors) add_canonical(m, arch, raw.n_embed, t);
  finalize_and_validate(m, "'" + path + "'");
  if (m.dims.n_vocab != raw.n_vocab || m.dims.n_embd != raw.n_embed || m.dims.n_layer != raw.n_layer) {
    throw InputError("'" + path + "': the header says n_vocab " + std::to_string(raw.n_vocab) + ", n_embed " +
                     std::to_string(raw.n_embed) + ", n_layer " + std::to_string(raw.n_layer) +
                     " but the tensors have " + std::to_string(m.dims.n_vocab) + ", " + std::to_string(m.dims.n_embd) +
                     ", " + std::to_string(m.dims.n_layer));
  }
  return m;
}

namespace {

// rwkv.cpp's converter keeps vectors and small time-mix matrices in FP32 even in FP16 files.
bool stays_fp32(const std::string& name, const std::vector<int64_t>& stored_shape) {
  if (stored_shape.size() < 2) return true;
  for (const char* s : {".time_", ".k_k", ".k_a", ".r_k", ".x_rwkvag", ".x_k", ".w0", ".a0", ".v0"}) {
    if (name.find(s) != std::string::npos) return true;
  }
  return false;
}

// Applies rwkv.cpp's storage transforms to one canonical tensor.
RwkvCppRawTensor to_stored(const Model& m, const std::string& n, const Tensor& t) {
  const ArchVersion arch = m.arch;
  const int64_t H = m.dims.n_head, S = m.dims.head_size, D = m.dims.n_embd;
  RwkvCppRawTensor out;
  out.name = n;
  out.shape = t.shape;
  out.data = t.data;
  auto map_all = [&](float (*f)(float)) {
    for (float& v : out.data) v = f(v);
  };
  if (n.find(".time_") != std::string::npos) {  // the converter squeezes every .time_ tensor
    std::vector<int64_t> s;
    for (int64_t d : out.shape)
      if (d != 1) s.push_back(d);
    if (s.empty()) s.push_back(1);
    out.shape = s;
  }
  switch (arch) {
    case ArchVersion::V4:
      if (n.ends_with(".att.time_decay")) map_all(rwkvcpp_stored_decay_v4);
      break;
    case ArchVersion::V5_1:
      if (n.ends_with(".att.time_decay")) {
        map_all(rwkvcpp_stored_decay_v5);
        out.shape = {H, 1, 1};
      } else if (n.ends_with(".att.time_first")) {
        map_all(rwkvcpp_stored_first_v5_1);
        out.shape = {H, 1, 1};
      }
      break;
    case ArchVersion::V5_2:
      if (n.ends_with(".att.time_decay")) {
        map_all(rwkvcpp_stored_decay_v5);
        out.shape = {H, S, 1};
      } else if (n.ends_with(".att.time_faaaa")) {
        out.shape = {H, S, 1};
      }
      break;
    case ArchVersion::V6:
      if (n.ends_with(".att.time_faaaa") || n.ends_with(".att.time_decay")) {
        out.shape = {H, S, 1};
      } else if (n.ends_with(".att.time_maa_w1") || n.ends_with(".att.time_decay_w1") ||
                 n.ends_with(".att.time_decay_w2") || n.ends_with(".att.time_maa_w2")) {
        Tensor tr = transpose_last2(t.shape, t.data);
        out.shape = tr.shape;
        out.data = std::move(tr.data);
      }
      break;
    case ArchVersion::V7:
      if (is_v7_lora(n)) {
        Tensor tr = transpose_last2(t.shape, t.data);
        out.shape = tr.shape;
        out.data = std::move(tr.data);
      }
      break;
  }
  (void)D;
  return out;
}

void write_tensor(AtomicFile& f, const RwkvCppRawTensor& t, RwkvCppType dtype) {
  const bool half = dtype == RwkvCppType::FP16 && !stays_fp32(t.name, t.shape);
  const int32_t header[3] = {static_cast<int32_t>(t.shape.size()), static_cast<int32_t>(t.name.size()), half ? 1 : 0};
  f.write(header, sizeof header);
  for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) {
    const int32_t d = static_cast<int32_t>(*it);
    f.write(&d, sizeof d);
  }
  f.write(t.name.data(), t.name.size());
  if (half) {
    std::vector<uint16_t> h(t.data.size());
    for (size_t i = 0; i < h.size(); ++i) h[i] = float_to_fp16(t.data[i]);
    f.write(h.data(), h.size() * 2);
  } else {
    f.write(t.data.data(), t.data.size() * 4);
  }
}

}  // namespace

void write_rwkvcpp(const Model& m, const std::string& path, RwkvCppType dtype) {
  if (dtype != RwkvCppType::FP32 && dtype != RwkvCppType::FP16) {
    throw UsageError("rwkv.cpp files can be written as FP32 or FP16 only (quantize with rwkv.cpp's own tool)");
  }
  AtomicFile f(path);
  const int32_t header[6] = {static_cast<int32_t>(kMagic), 101, static_cast<int32_t>(m.dims.n_vocab),
                             static_cast<int32_t>(m.dims.n_embd), static_cast<int32_t>(m.dims.n_layer),
                             static_cast<int32_t>(dtype)};
  f.write(header, sizeof header);
  for (const std::string& name : ordered_tensor_names(m)) {
    if (m.arch == ArchVersion::V7) {
      const auto pos = name.find(".att.x_");
      if (pos != std::string::npos) {
        if (!name.ends_with(".att.x_r")) continue;  // the six mixes go out together as x_rwkvag
        const std::string prefix = name.substr(0, pos + 5);
        RwkvCppRawTensor cat;
        cat.name = prefix + "x_rwkvag";
        cat.shape = {6, 1, m.dims.n_embd};
        for (const char* mix : kV7Mixes) {
          const Tensor& part = m.at(prefix + mix);
          cat.data.insert(cat.data.end(), part.data.begin(), part.data.end());
        }
        write_tensor(f, cat, dtype);
        continue;
      }
    }
    write_tensor(f, to_stored(m, name, m.at(name)), dtype);
  }
  f.commit();
}

}  // namespace rwkvlite
