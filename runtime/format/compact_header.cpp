#include "runtime/format/compact_header.h"

#include <algorithm>
#include <limits>
#include <set>
#include <unordered_set>

#include "runtime/core/error.h"
#include "runtime/core/tensor.h"

namespace rwkvlite::format {

using nlohmann::json;

namespace {

const std::vector<std::string> kRootFields = {"arch", "dims", "format", "metadata", "tensors"};
const std::vector<std::string> kFormatFields = {"major", "minor"};
const std::vector<std::string> kTensorFields = {"block_xxh64", "encoding", "name",     "nbytes",
                                                "offset",      "row_bytes", "rows_per_block", "shape"};

json tensor_to_json(const TensorInfo& t) {
  json j = json::object();
  j["name"] = t.name;
  j["encoding"] = encoding_name(t.encoding);
  j["shape"] = t.shape;
  j["offset"] = t.offset;
  j["nbytes"] = t.nbytes;
  j["row_bytes"] = t.row_bytes;
  j["rows_per_block"] = t.rows_per_block;
  j["block_xxh64"] = checksums_to_hex(t.block_xxh64);
  return j;
}

// Parses JSON while enforcing the limits that keep hostile headers cheap: nesting depth,
// number of values, and no duplicate object keys (nlohmann would silently keep the last one,
// letting two readers of one file disagree).
json parse_json_limited(const char* data, size_t size) {
  std::vector<std::set<std::string>> open_objects;  // keys seen, one set per open object
  std::vector<bool> is_object;                      // kind of each open container
  uint64_t values = 0;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (is_object.size() >= static_cast<size_t>(kMaxHeaderJsonDepth)) {
          throw InputError("header JSON is nested deeper than " + std::to_string(kMaxHeaderJsonDepth) + " levels");
        }
        is_object.push_back(event == json::parse_event_t::object_start);
        if (is_object.back()) open_objects.emplace_back();
        ++values;
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        is_object.pop_back();
        break;
      case json::parse_event_t::array_end: is_object.pop_back(); break;
      case json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second) {
          throw InputError("header JSON has the key '" + parsed.get<std::string>() + "' twice in one object");
        }
        break;
      case json::parse_event_t::value: ++values; break;
    }
    if (values > kMaxHeaderJsonValues) {
      throw InputError("header JSON has more than " + std::to_string(kMaxHeaderJsonValues) + " values");
    }
    return true;
  };
  try {
    return json::parse(data, data + size, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw InputError(std::string("header is not valid JSON: ") + e.what());
  }
}

// Field access with one uniform message per kind of schema problem.
class Fields {
 public:
  Fields(const json& obj, std::string context, bool allow_unknown, const std::vector<std::string>& known)
      : obj_(obj), context_(std::move(context)) {
    if (!obj_.is_object()) fail("must be a JSON object");
    if (!allow_unknown) {
      for (const auto& item : obj_.items()) {
        if (std::find(known.begin(), known.end(), item.key()) == known.end()) {
          fail("has an unknown field '" + item.key() + "'");
        }
      }
    }
  }

  const json& at(const char* key) const {
    const auto it = obj_.find(key);
    if (it == obj_.end()) fail(std::string("has no field '") + key + "'");
    return *it;
  }
  uint64_t u64(const char* key) const {
    const json& v = at(key);
    if (!v.is_number_unsigned()) fail(std::string("field '") + key + "' must be a non-negative integer");
    return v.get<uint64_t>();
  }
  const std::string& str(const char* key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(std::string("field '") + key + "' must be a string");
    return v.get_ref<const std::string&>();
  }
  const json& object(const char* key) const {
    const json& v = at(key);
    if (!v.is_object()) fail(std::string("field '") + key + "' must be a JSON object");
    return v;
  }
  const json& array(const char* key) const {
    const json& v = at(key);
    if (!v.is_array()) fail(std::string("field '") + key + "' must be a JSON array");
    return v;
  }
  [[noreturn]] void fail(const std::string& what) const { throw InputError(context_ + " " + what); }

 private:
  const json& obj_;
  std::string context_;
};

std::string range_text(uint64_t begin, uint64_t end) {
  return "bytes " + std::to_string(begin) + ".." + std::to_string(end);
}

TensorInfo parse_tensor(const json& entry, size_t index, bool allow_unknown, uint64_t data_size) {
  // Until the name is known, messages say which entry of the table is bad.
  std::string context = "header: tensor #" + std::to_string(index);
  TensorInfo t;
  {
    const Fields f(entry, context, allow_unknown, kTensorFields);
    t.name = f.str("name");
    if (!is_valid_tensor_name(t.name)) {
      f.fail("has an invalid name (1.." + std::to_string(kMaxTensorNameBytes) + " printable ASCII characters, no spaces)");
    }
  }
  context = "header: tensor '" + t.name + "'";
  const Fields f(entry, context, allow_unknown, kTensorFields);

  const std::string& encoding = f.str("encoding");
  const auto spec = try_parse_encoding(encoding);
  if (!spec) f.fail("has an unknown encoding '" + encoding + "'");
  t.encoding = *spec;

  const json& shape = f.array("shape");
  if (shape.size() > static_cast<size_t>(kMaxTensorRank)) {
    f.fail("has rank " + std::to_string(shape.size()) + ", more than " + std::to_string(kMaxTensorRank));
  }
  for (const json& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      f.fail("has a shape whose dimensions are not all integers in 1..2^63-1");
    }
    t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }
  if (!fold_shape(t.shape, &t.rows, &t.cols)) {
    f.fail("has shape " + shape_to_string(t.shape) + " with a zero dimension or more than 2^62 elements");
  }
  if (t.cols >= (int64_t{1} << 60)) f.fail("has rows of " + std::to_string(t.cols) + " columns, too many");
  const uint64_t expected_row_bytes = encoded_row_bytes(t.encoding, t.cols);

  t.row_bytes = f.u64("row_bytes");
  if (t.row_bytes != expected_row_bytes) {
    f.fail("has row_bytes " + std::to_string(t.row_bytes) + " but " + encoding + " rows of " + std::to_string(t.cols) +
           " columns take " + std::to_string(expected_row_bytes));
  }
  t.nbytes = f.u64("nbytes");
  uint64_t expected_nbytes = 0;
  const bool overflow = __builtin_mul_overflow(static_cast<uint64_t>(t.rows), t.row_bytes, &expected_nbytes);
  if (overflow || t.nbytes != expected_nbytes) {
    f.fail("has nbytes " + std::to_string(t.nbytes) + " but " + std::to_string(t.rows) + " rows x " +
           std::to_string(t.row_bytes) + " bytes = " + (overflow ? "more than 2^64" : std::to_string(expected_nbytes)));
  }
  t.offset = f.u64("offset");
  if (t.offset % kAlignment != 0) {
    f.fail("has offset " + std::to_string(t.offset) + ", not a multiple of " + std::to_string(kAlignment));
  }
  if (t.offset > data_size || t.nbytes > data_size - t.offset) {
    f.fail("occupies " + range_text(t.offset, t.offset + t.nbytes) + " of the data section, which has only " +
           std::to_string(data_size) + " bytes");
  }
  t.rows_per_block = f.u64("rows_per_block");
  if (t.rows_per_block < 1 || t.rows_per_block > static_cast<uint64_t>(t.rows)) {
    f.fail("has rows_per_block " + std::to_string(t.rows_per_block) + ", outside 1.." + std::to_string(t.rows));
  }
  const std::string& hex = f.str("block_xxh64");
  if (!checksums_from_hex(hex, t.block_count(), &t.block_xxh64)) {
    f.fail("has a block_xxh64 of " + std::to_string(hex.size()) + " characters; " + std::to_string(t.block_count()) +
           " blocks need " + std::to_string(t.block_count() * 16) + " lower-case hex digits");
  }
  return t;
}

// The tensors must tile the data section: sorted by offset, each starts at the first aligned
// offset after the previous one, and the section ends at the aligned end of the last. So no
// two tensors overlap, no byte of the section is unaccounted for (no hidden data), and every
// byte between tensors is alignment padding, which verify() checks is zero.
void check_tiling(const std::vector<TensorInfo>& tensors, uint64_t data_size) {
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : tensors) by_offset.push_back(&t);
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : by_offset) {
    if (prev && t->offset < prev->offset + prev->nbytes) {
      throw InputError("header: tensors '" + prev->name + "' (" + range_text(prev->offset, prev->offset + prev->nbytes) +
                       ") and '" + t->name + "' (" + range_text(t->offset, t->offset + t->nbytes) +
                       ") overlap in the data section");
    }
    if (t->offset != expected) {
      throw InputError("header: tensor '" + t->name + "' starts at data offset " + std::to_string(t->offset) +
                       " but the previous tensor ends (aligned) at " + std::to_string(expected) +
                       "; the data section must have no holes");
    }
    expected = align_up(t->offset + t->nbytes, kAlignment);
    prev = t;
  }
  if (expected != data_size) {
    throw InputError("header: the tensors end (aligned) at data offset " + std::to_string(expected) +
                     " but the data section has " + std::to_string(data_size) + " bytes");
  }
}

}  // namespace

std::string build_header_json(const CompactHeader& header, uint16_t major, uint16_t minor) {
  if (!header.arch.is_object() || !header.dims.is_object() || !header.metadata.is_object()) {
    throw UsageError("compact header: arch, dims and metadata must be JSON objects");
  }
  json root = json::object();
  root["format"] = {{"major", major}, {"minor", minor}};
  root["arch"] = header.arch;
  root["dims"] = header.dims;
  root["metadata"] = header.metadata;
  json tensors = json::array();
  for (const auto& t : header.tensors) tensors.push_back(tensor_to_json(t));
  root["tensors"] = std::move(tensors);
  try {
    return root.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::strict);
  } catch (const json::exception& e) {
    throw UsageError(std::string("compact header: cannot serialise the JSON header: ") + e.what());
  }
}

CompactHeader parse_header_json(const char* data, size_t size, const Preamble& preamble) {
  const json root = parse_json_limited(data, size);
  // A file from a newer minor version may carry fields this reader does not know; they are
  // additive by the versioning rules, so they are ignored. In a file of a version this reader
  // fully knows, an unknown field means a bug or tampering.
  const bool allow_unknown = preamble.minor > kFormatMinor;
  const Fields f(root, "header", allow_unknown, kRootFields);

  const Fields version(f.object("format"), "header: 'format'", allow_unknown, kFormatFields);
  const uint64_t major = version.u64("major"), minor = version.u64("minor");
  if (major != preamble.major || minor != preamble.minor) {
    throw InputError("header says format version " + std::to_string(major) + "." + std::to_string(minor) +
                     " but the preamble says " + std::to_string(preamble.major) + "." + std::to_string(preamble.minor));
  }

  CompactHeader header;
  header.arch = f.object("arch");
  header.dims = f.object("dims");
  header.metadata = f.object("metadata");
  const json& tensors = f.array("tensors");
  std::unordered_set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorInfo t = parse_tensor(tensors[i], i, allow_unknown, preamble.data_size);
    if (!names.insert(t.name).second) throw InputError("header: tensor '" + t.name + "' appears more than once");
    header.tensors.push_back(std::move(t));
  }
  check_tiling(header.tensors, preamble.data_size);
  return header;
}

}  // namespace rwkvlite::format
