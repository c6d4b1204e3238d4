#include "converters/torch_pickle.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>

#include "runtime/core/error.h"

namespace rwkvlite {
namespace {

// ---- values ---------------------------------------------------------------------------------

enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Storage, Tensor, Object };

struct Value;
// Shared because pickles alias objects through the memo (and a dict built by SETITEMS after
// being memoized must be the same dict wherever it was referenced); sharing also keeps hostile
// pickles that reference one big object many times linear in size.
using Ref = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::None;
  int64_t integer = 0;            // Bool, Int; Storage: element count; Tensor: storage offset
  std::string text;               // String, Bytes; Global: "module.name"; Object: class; Storage: key
  std::string storage_class;      // Storage: "FloatStorage", ...
  std::vector<Ref> items;         // Tuple, List; Tensor: its storage
  std::vector<std::pair<Ref, Ref>> entries;         // Dict, in insertion order
  std::unordered_map<std::string, size_t> by_name;  // Dict: string key -> index in entries
  std::vector<int64_t> shape, stride;               // Tensor
};

Ref make(Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

Ref make_int(Kind kind, int64_t i) {
  Ref v = make(kind);
  v->integer = i;
  return v;
}

Ref make_text(Kind kind, std::string s) {
  Ref v = make(kind);
  v->text = std::move(s);
  return v;
}

std::string describe(const Value& v) {
  switch (v.kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "a bool";
    case Kind::Int: return "an integer";
    case Kind::Float: return "a float";
    case Kind::String: return "a string";
    case Kind::Bytes: return "a bytes object";
    case Kind::Tuple: return "a tuple of " + std::to_string(v.items.size()) + " items";
    case Kind::List: return "a list of " + std::to_string(v.items.size()) + " items";
    case Kind::Dict: return "a dict of " + std::to_string(v.entries.size()) + " entries";
    case Kind::Global: return "a reference to " + v.text;
    case Kind::Storage: return "a bare tensor storage";
    case Kind::Tensor: return "a tensor";
    case Kind::Object:
      if (v.text.rfind("__torch__.", 0) == 0) return "a TorchScript object of class '" + v.text + "'";
      return "a Python object of class '" + v.text + "'";
  }
  return "an unknown value";
}

void dict_set(Value& dict, Ref key, Ref value) {
  if (key->kind == Kind::String) {
    auto [it, inserted] = dict.by_name.emplace(key->text, dict.entries.size());
    if (!inserted) {  // Python dict semantics: a repeated key replaces the value in place
      dict.entries[it->second].second = std::move(value);
      return;
    }
  }
  dict.entries.emplace_back(std::move(key), std::move(value));
}

// ---- the unpickler --------------------------------------------------------------------------

// Pickle opcodes (Python's Lib/pickle.py names).
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BINFLOAT = 'G', BININT = 'J', BININT1 = 'K',
  BININT2 = 'M', NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e',
  BINGET = 'h', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's',
  TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINBYTES = 'B', SHORT_BINBYTES = 'C', PROTO = 0x80,
  NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a,
  LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96,
};

class Unpickler {
 public:
  Unpickler(const std::vector<uint8_t>& data, const std::string& where) : data_(data), where_(where) {}
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  // Lists and dicts are the only values mutated after creation, so the only ones a pickle can
  // make contain themselves (through the memo); tuples can nest millions deep. Emptying every
  // container here breaks cycles, which shared ownership would otherwise leak, and keeps
  // destruction from recursing as deep as the nesting. Results must be extracted first.
  ~Unpickler() {
    for (const Ref& c : containers_) {
      c->items.clear();
      c->entries.clear();
    }
  }

  Ref run() {
    while (true) {
      op_start_ = pos_;
      const uint8_t op = read_u8();
      if (op == STOP) break;
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty()) fail("the pickle ends with " + std::to_string(stack_.size()) + " values on its stack");
    return stack_.back();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(where_ + ": malformed pickle (data.pkl, byte " + std::to_string(op_start_) + "): " + what);
  }

  // -- reading the byte stream, every length checked against what remains --
  void need(uint64_t n) const {
    if (n > data_.size() - pos_) fail("truncated: needs " + std::to_string(n) + " more bytes");
  }
  uint8_t read_u8() {
    need(1);
    return data_[pos_++];
  }
  uint64_t read_le(int bytes) {
    need(static_cast<uint64_t>(bytes));
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += static_cast<size_t>(bytes);
    return v;
  }
  std::string read_bytes(uint64_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(&data_[pos_]), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  std::string read_line() {
    const size_t start = pos_;
    while (pos_ < data_.size() && data_[pos_] != '\n') ++pos_;
    if (pos_ == data_.size()) fail("truncated: a text argument has no end of line");
    std::string s(reinterpret_cast<const char*>(&data_[start]), pos_ - start);
    ++pos_;
    return s;
  }
  // Little-endian two's complement of n bytes (LONG1/LONG4); beyond 8 bytes no tensor
  // geometry can use it.
  int64_t read_long(uint64_t n) {
    if (n > 8) fail("an integer of " + std::to_string(n) + " bytes is too large");
    if (n == 0) return 0;
    const uint64_t raw = read_le(static_cast<int>(n));
    if (n == 8) return static_cast<int64_t>(raw);
    const uint64_t sign = uint64_t{1} << (8 * n - 1);
    return static_cast<int64_t>((raw ^ sign) - sign);
  }

  // -- the stack and marks --
  // Every value created or referenced passes through here; bounding the count bounds the
  // memory a hostile pickle can make us spend, far above what any state dict needs (about 25
  // per tensor).
  void push(Ref v) {
    if (++pushes_ > kMaxValues) fail("more than " + std::to_string(kMaxValues) + " values: not a state dict");
    stack_.push_back(std::move(v));
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Ref pop() {
    if (stack_.size() <= floor()) fail("an opcode needs a value the stack does not hold");
    Ref v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Ref& top() {
    if (stack_.size() <= floor()) fail("an opcode needs a value the stack does not hold");
    return stack_.back();
  }
  std::vector<Ref> pop_to_mark() {
    if (marks_.empty()) fail("no mark to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(std::make_move_iterator(stack_.begin() + static_cast<ptrdiff_t>(m)),
                           std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  Ref tuple_of(std::vector<Ref> items) {
    Ref t = container_value(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  Value& container(Kind kind, const char* opcode) {
    Ref& c = top();
    if (c->kind != kind) fail(std::string(opcode) + " applied to " + describe(*c));
    return *c;
  }
  Ref container_value(Kind kind) {
    Ref v = make(kind);
    containers_.push_back(v);
    return v;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " is read before it is written");
    push(it->second);
  }

  void step(uint8_t op) {
    switch (op) {
      case PROTO:
        if (read_u8() > 5) fail("unknown pickle protocol");
        break;
      case FRAME:
        read_le(8);  // framing only groups opcodes; the stream reads the same without it
        break;
      case MARK: marks_.push_back(stack_.size()); break;
      case POP:
        if (!marks_.empty() && marks_.back() == stack_.size()) {
          marks_.pop_back();
        } else {
          pop();
        }
        break;
      case POP_MARK: pop_to_mark(); break;
      case DUP: push(top()); break;
      case NONE: push(make(Kind::None)); break;
      case NEWTRUE: push(make_int(Kind::Bool, 1)); break;
      case NEWFALSE: push(make_int(Kind::Bool, 0)); break;
      case BININT: push(make_int(Kind::Int, static_cast<int32_t>(read_le(4)))); break;
      case BININT1: push(make_int(Kind::Int, read_u8())); break;
      case BININT2: push(make_int(Kind::Int, static_cast<int64_t>(read_le(2)))); break;
      case LONG1: push(make_int(Kind::Int, read_long(read_u8()))); break;
      case LONG4: {
        const auto n = static_cast<int32_t>(read_le(4));
        if (n < 0) fail("negative LONG4 length");
        push(make_int(Kind::Int, read_long(static_cast<uint64_t>(n))));
        break;
      }
      case BINFLOAT:  // the value never matters to a state dict (at most a module attribute)
        read_bytes(8);
        push(make(Kind::Float));
        break;
      case SHORT_BINUNICODE: push(make_text(Kind::String, read_bytes(read_u8()))); break;
      case BINUNICODE: push(make_text(Kind::String, read_bytes(read_le(4)))); break;
      case BINUNICODE8: push(make_text(Kind::String, read_bytes(read_le(8)))); break;
      case SHORT_BINSTRING: push(make_text(Kind::String, read_bytes(read_u8()))); break;
      case BINSTRING: {
        const auto n = static_cast<int32_t>(read_le(4));
        if (n < 0) fail("negative string length");
        push(make_text(Kind::String, read_bytes(static_cast<uint64_t>(n))));
        break;
      }
      case SHORT_BINBYTES: push(make_text(Kind::Bytes, read_bytes(read_u8()))); break;
      case BINBYTES: push(make_text(Kind::Bytes, read_bytes(read_le(4)))); break;
      case BINBYTES8:
      case BYTEARRAY8: push(make_text(Kind::Bytes, read_bytes(read_le(8)))); break;
      case EMPTY_TUPLE: push(make(Kind::Tuple)); break;
      case TUPLE: push(tuple_of(pop_to_mark())); break;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        std::vector<Ref> items(op - TUPLE1 + 1);
        for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
        push(tuple_of(std::move(items)));
        break;
      }
      case EMPTY_LIST: push(container_value(Kind::List)); break;
      case LIST: {
        Ref l = container_value(Kind::List);
        l->items = pop_to_mark();
        push(l);
        break;
      }
      case APPEND: {
        Ref v = pop();
        container(Kind::List, "APPEND").items.push_back(std::move(v));
        break;
      }
      case APPENDS: {
        std::vector<Ref> items = pop_to_mark();
        auto& list = container(Kind::List, "APPENDS").items;
        list.insert(list.end(), items.begin(), items.end());
        break;
      }
      case EMPTY_DICT: push(container_value(Kind::Dict)); break;
      case DICT: {
        std::vector<Ref> items = pop_to_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        Ref d = container_value(Kind::Dict);
        for (size_t i = 0; i < items.size(); i += 2) dict_set(*d, items[i], items[i + 1]);
        push(d);
        break;
      }
      case SETITEM: {
        Ref value = pop();
        Ref key = pop();
        dict_set(container(Kind::Dict, "SETITEM"), std::move(key), std::move(value));
        break;
      }
      case SETITEMS: {
        std::vector<Ref> items = pop_to_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        Value& d = container(Kind::Dict, "SETITEMS");
        for (size_t i = 0; i < items.size(); i += 2) dict_set(d, items[i], items[i + 1]);
        break;
      }
      case GLOBAL: {
        std::string module = read_line();
        std::string name = read_line();
        push(make_text(Kind::Global, module + "." + name));
        break;
      }
      case STACK_GLOBAL: {
        Ref name = pop();
        Ref module = pop();
        if (name->kind != Kind::String || module->kind != Kind::String) fail("STACK_GLOBAL without two strings");
        push(make_text(Kind::Global, module->text + "." + name->text));
        break;
      }
      case REDUCE: {
        Ref args = pop();
        Ref callable = pop();
        push(reduce(*callable, *args));
        break;
      }
      case NEWOBJ: {
        pop();  // arguments: the object is never constructed
        Ref cls = pop();
        push(make_text(Kind::Object, cls->kind == Kind::Global ? cls->text : describe(*cls)));
        break;
      }
      case NEWOBJ_EX: {
        pop();
        pop();
        Ref cls = pop();
        push(make_text(Kind::Object, cls->kind == Kind::Global ? cls->text : describe(*cls)));
        break;
      }
      case BUILD:
        // Object state: an OrderedDict's _metadata, a module's attributes. Never needed for
        // the tensors; dropped.
        pop();
        top();
        break;
      case BINPERSID: push(persistent_load(*pop())); break;
      case BINPUT: memo_put(read_u8()); break;
      case LONG_BINPUT: memo_put(read_le(4)); break;
      case MEMOIZE: memo_put(memo_.size()); break;
      case BINGET: memo_get(read_u8()); break;
      case LONG_BINGET: memo_get(read_le(4)); break;
      default: {
        static const char* hex = "0123456789abcdef";
        fail(std::string("unsupported opcode 0x") + hex[op >> 4] + hex[op & 15] +
             " (torch.save writes pickle protocol 2; re-save the checkpoint with the default protocol)");
      }
    }
  }

  // The callables a state dict needs are recognised by name and applied to plain data; any
  // other call yields an opaque Object named after the callable, which the caller reports.
  Ref reduce(const Value& callable, const Value& args, bool unwrapped = false) {
    if (callable.kind != Kind::Global) return make_text(Kind::Object, "the result of calling " + describe(callable));
    const std::string& fn = callable.text;
    if (fn == "collections.OrderedDict" && args.kind == Kind::Tuple && args.items.empty()) {
      return container_value(Kind::Dict);
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
      return rebuild_tensor(args, fn == "torch._utils._rebuild_tensor_v2" ? 6 : 4);
    }
    if (fn == "torch._utils._rebuild_parameter" || fn == "torch._utils._rebuild_parameter_with_state") {
      if (args.kind != Kind::Tuple || args.items.empty() || args.items[0]->kind != Kind::Tensor) {
        fail(fn + " without a tensor as its first argument");
      }
      return args.items[0];
    }
    if (fn == "torch._tensor._rebuild_from_type_v2" && !unwrapped && args.kind == Kind::Tuple && args.items.size() == 4 &&
        args.items[1]->kind == Kind::Global &&
        (args.items[1]->text == "torch.Tensor" || args.items[1]->text == "torch.nn.parameter.Parameter")) {
      // A plain tensor or parameter wrapped with its Python state; unwrapped once only, so a
      // hostile nesting cannot recurse deeply.
      return reduce(*args.items[0], *args.items[2], true);
    }
    return make_text(Kind::Object, fn);
  }

  std::vector<int64_t> int_tuple(const Value& v, const char* what) {
    if (v.kind != Kind::Tuple) fail(std::string("a tensor's ") + what + " is " + describe(v) + ", not a tuple");
    std::vector<int64_t> out;
    for (const Ref& item : v.items) {
      if (item->kind != Kind::Int) fail(std::string("a tensor's ") + what + " holds " + describe(*item));
      out.push_back(item->integer);
    }
    return out;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
  // [, metadata]) and the older _rebuild_tensor(storage, storage_offset, size, stride).
  Ref rebuild_tensor(const Value& args, size_t min_args) {
    if (args.kind != Kind::Tuple || args.items.size() < min_args || args.items.size() > min_args + 1) {
      fail("a tensor rebuild with " + describe(args) + " as arguments");
    }
    const Ref& storage = args.items[0];
    if (storage->kind != Kind::Storage) fail("a tensor rebuilt from " + describe(*storage) + " instead of a storage");
    if (args.items[1]->kind != Kind::Int) fail("a tensor whose storage offset is " + describe(*args.items[1]));
    Ref t = make(Kind::Tensor);
    t->items.push_back(storage);
    t->integer = args.items[1]->integer;
    t->shape = int_tuple(*args.items[2], "size");
    t->stride = int_tuple(*args.items[3], "stride");
    return t;
  }

  // torch.save's persistent ids: ('storage', storage class, key, location, element count).
  Ref persistent_load(const Value& pid) {
    if (pid.kind != Kind::Tuple || pid.items.size() != 5 || pid.items[0]->kind != Kind::String ||
        pid.items[0]->text != "storage") {
      fail("a persistent id that is not a torch storage reference");
    }
    const Value& cls = *pid.items[1];
    const Value& key = *pid.items[2];
    const Value& numel = *pid.items[4];
    if (cls.kind != Kind::Global || cls.text.rfind("torch.", 0) != 0 || key.kind != Kind::String ||
        numel.kind != Kind::Int || numel.integer < 0) {
      fail("a malformed storage reference");
    }
    Ref s = make_text(Kind::Storage, key.text);
    s->storage_class = cls.text.substr(6);
    s->integer = numel.integer;
    return s;
  }

  const std::vector<uint8_t>& data_;
  const std::string& where_;
  size_t pos_ = 0, op_start_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
  std::vector<Ref> containers_;
  uint64_t pushes_ = 0;
  static constexpr uint64_t kMaxValues = 2'000'000;
};

// ---- state-dict extraction ------------------------------------------------------------------

struct StorageType {
  const char* storage_class;
  const char* torch_dtype;
  bool supported;
  DenseDtype dtype;
};
const StorageType kStorageTypes[] = {
    {"FloatStorage", "float32", true, DenseDtype::F32},
    {"HalfStorage", "float16", true, DenseDtype::F16},
    {"BFloat16Storage", "bfloat16", true, DenseDtype::BF16},
    {"DoubleStorage", "float64", false, DenseDtype::F32},
    {"LongStorage", "int64", false, DenseDtype::F32},
    {"IntStorage", "int32", false, DenseDtype::F32},
    {"ShortStorage", "int16", false, DenseDtype::F32},
    {"CharStorage", "int8", false, DenseDtype::F32},
    {"ByteStorage", "uint8", false, DenseDtype::F32},
    {"BoolStorage", "bool", false, DenseDtype::F32},
    {"ComplexFloatStorage", "complex64", false, DenseDtype::F32},
    {"ComplexDoubleStorage", "complex128", false, DenseDtype::F32},
    {"QInt8Storage", "qint8", false, DenseDtype::F32},
    {"QUInt8Storage", "quint8", false, DenseDtype::F32},
    {"QInt32Storage", "qint32", false, DenseDtype::F32},
};

DenseDtype storage_dtype(const std::string& where, const std::string& tensor, const std::string& storage_class) {
  for (const StorageType& s : kStorageTypes) {
    if (storage_class == s.storage_class) {
      if (s.supported) return s.dtype;
      throw InputError(where + ": tensor '" + tensor + "' has dtype " + s.torch_dtype +
                       "; rwkvlite reads float32, float16 and bfloat16 tensors");
    }
  }
  throw InputError(where + ": tensor '" + tensor + "' has storage type torch." + storage_class +
                   ", which rwkvlite does not read (float32, float16 and bfloat16 tensors only)");
}

// Checks that a view stays inside its storage, with overflow-checked arithmetic: a hostile
// shape or stride must not wrap around into a small, seemingly valid extent.
void check_geometry(const std::string& where, const TorchTensorRef& t) {
  auto bad = [&](const std::string& what) { throw InputError(where + ": tensor '" + t.name + "' " + what); };
  if (t.shape.size() != t.stride.size()) bad("has " + std::to_string(t.shape.size()) + " sizes but " +
                                             std::to_string(t.stride.size()) + " strides");
  if (t.storage_offset < 0) bad("has a negative storage offset");
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(t.storage_numel), dense_dtype_size(t.dtype), &bytes)) {
    bad("has a storage too large to address");
  }
  int64_t numel = 1, last = t.storage_offset;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] < 0) bad("has a negative size");
    if (t.stride[i] < 0) bad("has a negative stride");
    if (__builtin_mul_overflow(numel, t.shape[i], &numel)) bad("has a size too large to address");
    int64_t reach = 0;
    if (t.shape[i] > 0 && (__builtin_mul_overflow(t.shape[i] - 1, t.stride[i], &reach) ||
                           __builtin_add_overflow(last, reach, &last))) {
      bad("has strides reaching beyond any storage");
    }
  }
  // Zero strides let a view repeat its storage: a one-element storage "expanded" to billions of
  // elements is a few bytes on disk and gigabytes once gathered. Real checkpoints store dense
  // tensors, so a view may exceed its storage only by a small factor or a small absolute size.
  if (numel > t.storage_numel && numel > kTorchMaxExpandedElements &&
      numel / kTorchMaxExpansion >= std::max<int64_t>(t.storage_numel, 1)) {
    bad("has " + std::to_string(numel) + " elements but its storage '" + t.storage_key + "' only " +
        std::to_string(t.storage_numel) + " (zero strides repeating it); rwkvlite reads views at most " +
        std::to_string(kTorchMaxExpansion) + "x their storage");
  }
  if (numel > 0 && last >= t.storage_numel) {
    bad("reads element " + std::to_string(last) + " of storage '" + t.storage_key + "', which has only " +
        std::to_string(t.storage_numel) + " elements");
  }
}

std::string entry_hint(const std::string& key, const Value& v) {
  if (v.kind == Kind::Dict) return " (a training checkpoint? save its '" + key + "' entry on its own with torch.save)";
  return "";
}

// ---- the pickle writer ----------------------------------------------------------------------

class PickleWriter {
 public:
  void op(uint8_t o) { out_.push_back(o); }
  void raw(const std::string& s) { out_.insert(out_.end(), s.begin(), s.end()); }
  void le(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void string(const std::string& s) {
    op(BINUNICODE);
    le(s.size(), 4);
    raw(s);
  }
  void global(const std::string& module, const std::string& name) {
    op(GLOBAL);
    raw(module + "\n" + name + "\n");
  }
  // The integer encodings Python's pickler picks at protocol 2.
  void integer(int64_t v) {
    if (v >= 0 && v <= 0xff) {
      op(BININT1);
      le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v <= 0xffff) {
      op(BININT2);
      le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op(BININT);
      le(static_cast<uint64_t>(v), 4);
    } else {
      // Shortest little-endian two's complement.
      int n = 8;
      while (n > 1) {
        const int64_t reduced = static_cast<int64_t>(static_cast<uint64_t>(v) << (64 - 8 * (n - 1))) >> (64 - 8 * (n - 1));
        if (reduced != v) break;
        --n;
      }
      op(LONG1);
      le(static_cast<uint64_t>(n), 1);
      le(static_cast<uint64_t>(v), n);
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) {
      op(EMPTY_TUPLE);
      return;
    }
    if (v.size() > 3) op(MARK);
    for (int64_t x : v) integer(x);
    op(v.size() > 3 ? static_cast<uint8_t>(TUPLE) : static_cast<uint8_t>(TUPLE1 + v.size() - 1));
  }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

const char* storage_class_of(DenseDtype t) {
  switch (t) {
    case DenseDtype::F32: return "FloatStorage";
    case DenseDtype::F16: return "HalfStorage";
    case DenseDtype::BF16: return "BFloat16Storage";
  }
  return "FloatStorage";
}

}  // namespace

const char* torch_dtype_name(DenseDtype t) {
  switch (t) {
    case DenseDtype::F32: return "float32";
    case DenseDtype::F16: return "float16";
    case DenseDtype::BF16: return "bfloat16";
  }
  return "unknown";
}

std::vector<TorchTensorRef> parse_torch_state_dict(const std::vector<uint8_t>& pickle, const std::string& where) {
  Unpickler unpickler(pickle, where);  // owns the values until extraction is done
  const Ref top = unpickler.run();
  if (top->kind != Kind::Dict) {
    std::string hint;
    if (top->kind == Kind::Object) {
      hint = top->text.rfind("__torch__.", 0) == 0
                 ? " (a TorchScript module written by torch.jit.save)"
                 : " (a whole module or a training checkpoint?)";
    }
    throw InputError(where + ": the checkpoint holds " + describe(*top) + hint +
                     ", not a dict of tensors: save the model's state_dict() with torch.save");
  }
  if (top->entries.empty()) throw InputError(where + ": the checkpoint holds an empty dict");

  std::vector<TorchTensorRef> out;
  std::map<std::string, std::pair<std::string, int64_t>> storages;  // key -> (class, numel) seen
  for (const auto& [key, value] : top->entries) {
    if (key->kind != Kind::String) {
      throw InputError(where + ": the checkpoint's dict has a key that is " + describe(*key) + ", not a tensor name");
    }
    if (value->kind != Kind::Tensor) {
      throw InputError(where + ": entry '" + key->text + "' is " + describe(*value) + ", not a tensor" +
                       entry_hint(key->text, *value));
    }
    const Value& storage = *value->items[0];
    TorchTensorRef t;
    t.name = key->text;
    t.storage_key = storage.text;
    t.dtype = storage_dtype(where, t.name, storage.storage_class);
    t.storage_numel = storage.integer;
    t.storage_offset = value->integer;
    t.shape = value->shape;
    t.stride = value->stride;
    // One storage seen through two tensors must agree on what it is.
    auto [it, inserted] = storages.emplace(t.storage_key, std::make_pair(storage.storage_class, t.storage_numel));
    if (!inserted && it->second != std::make_pair(storage.storage_class, t.storage_numel)) {
      throw InputError(where + ": storage '" + t.storage_key + "' is described two different ways");
    }
    check_geometry(where, t);
    out.push_back(std::move(t));
  }
  return out;
}

uint64_t torch_storage_bytes(const TorchTensorRef& t) {
  return static_cast<uint64_t>(t.storage_numel) * dense_dtype_size(t.dtype);
}

std::vector<float> gather_torch_tensor(const TorchTensorRef& t, const uint8_t* storage) {
  int64_t numel = 1;
  for (int64_t d : t.shape) numel *= d;
  std::vector<float> out(static_cast<size_t>(numel));
  if (numel == 0) return out;
  const size_t element = dense_dtype_size(t.dtype);

  // Row-major contiguous views (the usual case) decode in one pass; size-1 dimensions may have
  // any stride.
  bool contiguous = true;
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] != 1 && t.stride[i] != expected) contiguous = false;
    expected *= t.shape[i];
  }
  if (contiguous) {
    decode_dense(storage + static_cast<size_t>(t.storage_offset) * element, out.size(), t.dtype, out.data());
    return out;
  }
  // Otherwise walk the index space in row-major order (transposed or sliced views).
  const size_t rank = t.shape.size();
  std::vector<int64_t> index(rank, 0);
  int64_t source = t.storage_offset;
  for (int64_t n = 0; n < numel; ++n) {
    decode_dense(storage + static_cast<size_t>(source) * element, 1, t.dtype, &out[static_cast<size_t>(n)]);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < t.shape[d]) {
        source += t.stride[d];
        break;
      }
      source -= (t.shape[d] - 1) * t.stride[d];
      index[d] = 0;
    }
  }
  return out;
}

std::vector<uint8_t> pickle_torch_state_dict(const std::vector<TorchPickleEntry>& entries) {
  PickleWriter w;
  w.op(PROTO);
  w.op(2);
  w.op(EMPTY_DICT);
  // Python's pickler writes dict items in batches of 1000, a lone item with SETITEM.
  constexpr size_t kBatch = 1000;
  for (size_t start = 0; start < entries.size(); start += kBatch) {
    const size_t end = std::min(entries.size(), start + kBatch);
    if (end - start > 1) w.op(MARK);
    for (size_t i = start; i < end; ++i) {
      const TorchPickleEntry& e = entries[i];
      int64_t numel = 1;
      for (int64_t d : e.shape) numel *= d;
      std::vector<int64_t> stride(e.shape.size());
      int64_t s = 1;
      for (size_t d = e.shape.size(); d-- > 0;) {
        stride[d] = s;
        s *= e.shape[d];
      }
      w.string(e.name);
      w.global("torch._utils", "_rebuild_tensor_v2");
      w.op(MARK);
      {  // the storage, as a persistent id
        w.op(MARK);
        w.string("storage");
        w.global("torch", storage_class_of(e.dtype));
        w.string(std::to_string(i));
        w.string("cpu");
        w.integer(numel);
        w.op(TUPLE);
        w.op(BINPERSID);
      }
      w.integer(0);  // storage offset
      w.int_tuple(e.shape);
      w.int_tuple(stride);
      w.op(NEWFALSE);  // requires_grad
      w.global("collections", "OrderedDict");  // backward hooks: none
      w.op(EMPTY_TUPLE);
      w.op(REDUCE);
      w.op(TUPLE);
      w.op(REDUCE);
    }
    w.op(end - start > 1 ? SETITEMS : SETITEM);
  }
  w.op(STOP);
  return w.take();
}

}  // namespace rwkvlite
