#include "converters/safetensors_file.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"

namespace rwkvlite {
namespace {

using nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";

// dtype names the safetensors specification defines, so that a valid but unsupported file gets
// "has dtype I64, rwkvlite reads ..." rather than "unknown dtype".
const char* const kSpecDtypes[] = {"BOOL", "U8",  "I8",  "I16", "U16", "F16",     "BF16",    "I32",
                                   "U32",  "F32", "F64", "I64", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0"};

struct HeaderEntry {
  std::string name;
  DenseDtype dtype = DenseDtype::F32;
  std::vector<int64_t> shape;
  uint64_t numel = 0;
  uint64_t begin = 0, end = 0;  // relative to the data section
};

struct Header {
  std::vector<HeaderEntry> entries;  // header order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
  uint64_t data_size = 0;
};

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// One InputError format for every header problem: "'<path>': <what>".
[[noreturn]] void fail(const std::string& path, const std::string& what) { throw InputError(in_quotes(path) + ": " + what); }

DenseDtype parse_dtype(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_string()) fail(path, "tensor " + in_quotes(name) + " has a \"dtype\" that is not a string");
  const std::string& s = v.get_ref<const std::string&>();
  if (s == "F32") return DenseDtype::F32;
  if (s == "F16") return DenseDtype::F16;
  if (s == "BF16") return DenseDtype::BF16;
  const bool in_spec = std::find(std::begin(kSpecDtypes), std::end(kSpecDtypes), s) != std::end(kSpecDtypes);
  fail(path, "tensor " + in_quotes(name) + " has " + (in_spec ? "dtype " : "unknown dtype ") + s +
                 "; rwkvlite reads F32, F16 and BF16 tensors");
}

uint64_t parse_unsigned(const std::string& path, const std::string& name, const char* field, const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) fail(path, "tensor " + in_quotes(name) + " has a negative value in \"" + field + "\"");
  fail(path, "tensor " + in_quotes(name) + " has a value in \"" + field + "\" that is not a non-negative integer");
}

HeaderEntry parse_entry(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_object()) fail(path, "header entry " + in_quotes(name) + " is not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(field)) fail(path, "tensor " + in_quotes(name) + " has no \"" + field + "\"");
  }
  HeaderEntry e;
  e.name = name;
  e.dtype = parse_dtype(path, name, v["dtype"]);

  const json& shape = v["shape"];
  if (!shape.is_array()) fail(path, "tensor " + in_quotes(name) + " has a \"shape\" that is not an array");
  // Products are overflow-checked: a hostile shape must not wrap around to a small byte count.
  uint64_t numel = 1;
  for (const json& d : shape) {
    const uint64_t dim = parse_unsigned(path, name, "shape", d);
    if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel)) {
      fail(path, "tensor " + in_quotes(name) + " has a shape whose element count overflows");
    }
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  e.numel = numel;

  const json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    fail(path, "tensor " + in_quotes(name) + " has \"data_offsets\" that are not a [begin, end] pair");
  }
  e.begin = parse_unsigned(path, name, "data_offsets", offsets[0]);
  e.end = parse_unsigned(path, name, "data_offsets", offsets[1]);
  if (e.end < e.begin) {
    fail(path, "tensor " + in_quotes(name) + " has data_offsets [" + std::to_string(e.begin) + ", " +
                   std::to_string(e.end) + "] that end before they begin");
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, dense_dtype_size(e.dtype), &nbytes)) {
    fail(path, "tensor " + in_quotes(name) + " has a shape whose byte count overflows");
  }
  if (nbytes != e.end - e.begin) {
    fail(path, "tensor " + in_quotes(name) + " of shape " + shape_to_string(e.shape) + " and dtype " +
                   safetensors_dtype_name(e.dtype) + " needs " + std::to_string(nbytes) +
                   " bytes but its data_offsets span " + std::to_string(e.end - e.begin));
  }
  return e;
}

Header read_header(const InputFile& file) {
  const std::string& path = file.path();
  if (file.size() < 8) {
    fail(path, "only " + std::to_string(file.size()) + " bytes, too short for a safetensors file (it looks like " +
                   describe_file_contents(path) + ")");
  }
  uint64_t header_length = 0;
  file.read_at(0, &header_length, 8, "the header length");
  if (header_length > kSafetensorsMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(header_length) + " exceeds the limit of " +
                   std::to_string(kSafetensorsMaxHeaderBytes) + " bytes: the file is corrupt or not a safetensors file");
  }
  if (header_length > file.size() - 8) {
    throw InputError(in_quotes(path) + " is truncated: its header needs " + std::to_string(header_length) +
                     " bytes after the length field but the file has only " + std::to_string(file.size() - 8));
  }
  if (header_length < 2) fail(path, "header length " + std::to_string(header_length) + " is too short for a JSON object");
  std::string text(header_length, '\0');
  file.read_at(8, text.data(), header_length, "the header");
  if (text[0] != '{') fail(path, "the header does not start with '{'");

  // nlohmann keeps the last of duplicated keys silently, so the callback checks every object's
  // keys (a tensor's "dtype" given twice, a metadata entry twice, a tensor twice). It also
  // stops at kSafetensorsMaxHeaderDepth: a valid header nests three levels ({name: {"shape": [..]}}),
  // and a few MB of "[[[[..." would otherwise be parsed into millions of nested arrays.
  std::vector<std::set<std::string>> keys_of_open_objects;
  const auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kSafetensorsMaxHeaderDepth) {
      fail(path, "the header nests deeper than " + std::to_string(kSafetensorsMaxHeaderDepth) +
                     " levels, which no safetensors header does");
    }
    if (event == json::parse_event_t::object_start) {
      keys_of_open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end && !keys_of_open_objects.empty()) {
      keys_of_open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !keys_of_open_objects.empty() &&
               !keys_of_open_objects.back().insert(parsed.get<std::string>()).second) {
      fail(path, "the header names " + in_quotes(parsed.get<std::string>()) + " twice" +
                     (depth > 1 ? " in one object" : ""));
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, on_event);
  } catch (const json::exception& e) {
    fail(path, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) fail(path, "the header is not a JSON object");

  Header h;
  h.data_start = 8 + header_length;
  h.data_size = file.size() - h.data_start;
  for (const auto& [key, value] : root.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) fail(path, "\"__metadata__\" is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(path, "metadata " + in_quotes(mk) + " is not a string");
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(path, key, value));
  }
  if (h.entries.empty()) fail(path, "the header lists no tensors");

  // The tensors must tile the data section exactly, in some order: no byte read twice (overlap),
  // none unaccounted for (hole or trailing bytes), none beyond the end (truncation).
  std::vector<const HeaderEntry*> by_offset;
  for (const auto& e : h.entries) {
    if (e.end > h.data_size) {
      throw InputError(in_quotes(path) + " is truncated or its offsets are wrong: tensor " + in_quotes(e.name) +
                       " ends at byte " + std::to_string(e.end) + " of the data section, which has only " +
                       std::to_string(h.data_size) + " bytes");
    }
    by_offset.push_back(&e);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const HeaderEntry* a, const HeaderEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry* e : by_offset) {
    if (e->begin < covered) {
      fail(path, "tensors " + in_quotes(previous->name) + " and " + in_quotes(e->name) + " overlap in the data section");
    }
    if (e->begin > covered) {
      fail(path, "bytes " + std::to_string(covered) + ".." + std::to_string(e->begin) +
                     " of the data section belong to no tensor");
    }
    covered = e->end;
    previous = e;
  }
  if (covered != h.data_size) {
    fail(path, "the file has " + std::to_string(h.data_size - covered) +
                   " bytes after the last tensor (longer than its header describes)");
  }
  return h;
}

float parse_eps(const std::string& path, const std::string& text) {
  float v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !plausible_ln_x_eps(v)) {
    fail(path, std::string("metadata ") + kSafetensorsEpsKey + " is " + in_quotes(text) + ", not a number in (0, " +
                   std::to_string(kMaxLnXEps) + "]");
  }
  return v;
}

// Shortest decimal that reads back as exactly `v`, so the epsilon round-trips bit for bit.
std::string format_eps(float v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

}  // namespace

const char* safetensors_dtype_name(SafetensorsDtype t) {
  switch (t) {
    case DenseDtype::F32: return "F32";
    case DenseDtype::F16: return "F16";
    case DenseDtype::BF16: return "BF16";
  }
  return "unknown";
}

Model read_safetensors(const std::string& path) {
  InputFile file(path);
  const Header h = read_header(file);

  Model m;
  m.source_format = "safetensors";
  std::vector<uint8_t> buffer;
  for (const HeaderEntry& e : h.entries) {
    buffer.resize(e.end - e.begin);
    if (!buffer.empty()) file.read_at(h.data_start + e.begin, buffer.data(), buffer.size(), "tensor data");
    Tensor t;
    t.shape = e.shape;
    t.data.resize(e.numel);
    decode_dense(buffer.data(), e.numel, e.dtype, t.data.data());
    m.tensors[e.name] = std::move(t);
    m.source_dtypes[e.name] = safetensors_dtype_name(e.dtype);
  }
  finalize_and_validate(m, in_quotes(path));

  const auto eps = h.metadata.find(kSafetensorsEpsKey);
  m.ln_x_eps = eps != h.metadata.end() ? parse_eps(path, eps->second) : default_ln_x_eps(m.arch);
  return m;
}

void write_safetensors(const Model& model, const std::string& path, SafetensorsDtype dtype) {
  const std::vector<std::string> names = ordered_tensor_names(model);
  if (names.size() != model.tensors.size()) {
    // Writing only the architecture's tensors would silently drop the others.
    throw Error("write_safetensors: the model has tensors outside its architecture's table (was it validated?)",
                kExitInternal);
  }

  // The header is built by hand rather than through a json object so that its key order (the
  // write order) and therefore the file's bytes are fixed.
  std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"";
  header += kSafetensorsEpsKey;
  header += "\":\"" + format_eps(model.ln_x_eps) + "\"}";
  uint64_t offset = 0;
  const size_t element_size = dense_dtype_size(dtype);
  for (const std::string& name : names) {
    const Tensor& t = model.at(name);
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * element_size;
    // Appended piecewise: g++ 12 warns falsely (-Wrestrict) on "literal" + std::string chains.
    header += ',';
    header += json(name).dump();
    header += ":{\"dtype\":\"";
    header += safetensors_dtype_name(dtype);
    header += "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i) header += ',';
      header += std::to_string(t.shape[i]);
    }
    header += "],\"data_offsets\":[";
    header += std::to_string(offset);
    header += ',';
    header += std::to_string(offset + nbytes);
    header += "]}";
    offset += nbytes;
  }
  header += "}";
  // The specification pads the header with spaces so that the data section starts 8-byte aligned.
  header.append((8 - header.size() % 8) % 8, ' ');

  AtomicFile out(path);
  const uint64_t header_length = header.size();
  out.write(&header_length, 8);
  out.write(header.data(), header.size());
  std::vector<uint8_t> buffer;
  for (const std::string& name : names) {
    const Tensor& t = model.at(name);
    buffer.resize(t.data.size() * element_size);
    encode_dense(t.data.data(), t.data.size(), dtype, buffer.data(), name);
    out.write(buffer.data(), buffer.size());
  }
  out.commit();
}

}  // namespace rwkvlite
