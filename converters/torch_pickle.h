// The pickle inside a torch.save checkpoint (the archive's data.pkl): a restricted reader for
// state dicts and a writer producing what torch.save writes for a dict of tensors.
//
// Why not LibTorch's own unpickler (torch::pickle_load): in LibTorch 1.13 it turns
// collections.OrderedDict, the type of every module.state_dict(), into None, and it lacks the
// SETITEM and APPEND opcodes Python emits for one-entry dicts and lists. This reader handles
// every opcode Python's pickler emits for plain data, evaluates nothing, and recognises only
// the callables a state dict needs (tensor and parameter rebuilds, OrderedDict); any other
// object is described in the error rather than constructed. It needs no LibTorch: the
// container (zip) side lives in pth_file.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "converters/dense_dtype.h"

namespace rwkvlite {

// One tensor of a state dict: a strided view into a storage (archive record "data/<key>").
// A view with zero strides may hold more elements than its storage; above
// kTorchMaxExpandedElements it may hold at most kTorchMaxExpansion times as many.
inline constexpr int64_t kTorchMaxExpandedElements = int64_t{1} << 20;
inline constexpr int64_t kTorchMaxExpansion = 16;
// Largest data.pkl read: a state dict's pickle is a few KiB per tensor.
inline constexpr uint64_t kTorchMaxPickleBytes = uint64_t{64} << 20;

struct TorchTensorRef {
  std::string name;
  std::string storage_key;
  DenseDtype dtype = DenseDtype::F32;
  int64_t storage_numel = 0;   // elements of the whole storage
  int64_t storage_offset = 0;  // in elements
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // in elements
};

// Parses data.pkl of a checkpoint whose top object is a dict (or OrderedDict) of str -> tensor.
// Throws InputError, prefixed with `where`, for a malformed pickle, a top object of another
// kind (saying what it is), a non-tensor entry, or a tensor of a type other than float32,
// float16 or bfloat16. Shapes, strides and offsets are checked to stay within their storage.
std::vector<TorchTensorRef> parse_torch_state_dict(const std::vector<uint8_t>& pickle, const std::string& where);

// Bytes a tensor's storage record must have.
uint64_t torch_storage_bytes(const TorchTensorRef& t);

// The tensor's elements in row-major order, decoded from its storage record (which must hold
// torch_storage_bytes(t) bytes), following shape, stride and offset.
std::vector<float> gather_torch_tensor(const TorchTensorRef& t, const uint8_t* storage);

// Element-type name as torch prints it ("float32", "float16", "bfloat16").
const char* torch_dtype_name(DenseDtype t);

// What to pickle for one tensor of a written state dict: contiguous, in storage "<index>".
struct TorchPickleEntry {
  std::string name;
  DenseDtype dtype = DenseDtype::F32;
  std::vector<int64_t> shape;
};

// data.pkl of a dict name -> tensor (pickle protocol 2, as torch.save writes it), entry i
// stored contiguously in storage key std::to_string(i). Deterministic.
std::vector<uint8_t> pickle_torch_state_dict(const std::vector<TorchPickleEntry>& entries);

}  // namespace rwkvlite
