// BlinkDL's PyTorch checkpoints (.pth): what torch.save(state_dict) writes, read into the
// canonical model and written from it.
//
// The file is a zip archive (torch >= 1.6) holding data.pkl, a pickled dict of tensor name ->
// tensor whose storages are the records data/<key>. The names, shapes and values are the
// canonical ones (the canonical model *is* BlinkDL's parameterisation), so no transform applies.
// The zip container is handled by LibTorch (caffe2::serialize), the pickle by
// converters/torch_pickle.h.
//
// The functions are defined in pth_file.cpp, which is the only translation unit that includes
// LibTorch headers; this header includes none, and only binaries linking rwkvlite_torch_io
// may call them.
#pragma once

#include <string>

#include "converters/dense_dtype.h"
#include "runtime/core/model.h"

namespace rwkvlite {

// F32, F16 or BF16: every tensor of a written file has this type.
using PthDtype = DenseDtype;

// Reads a torch.save checkpoint of float32, float16 or bfloat16 tensors (contiguous or not,
// storages shared or not; a dict or OrderedDict, as module.state_dict() returns). Throws
// InputError for a non-zip file, a corrupt archive, a legacy (pre-1.6, non-zip) pickle, a pickle
// that is not a dict of tensors (saying what it is), or non-float tensors; then validates the
// model as every reader does.
//
// BlinkDL's format records no group-norm epsilon, so ln_x_eps is default_ln_x_eps(arch);
// callers that know better set it afterwards (load_model's LoadOptions::ln_x_eps does).
Model read_pth(const std::string& path);

// Writes what torch.save(dict) writes: Python's torch.load (also with weights_only=True) reads
// it back as a dict of plain contiguous tensors with the canonical names and shapes, in
// ordered_tensor_names order. Atomic, deterministic bytes. Throws UsageError when a value does
// not fit the dtype.
void write_pth(const Model& model, const std::string& path, PthDtype dtype);

// Registers read_pth and write_pth with load_model/save_model (converters/model_io.h). The
// LibTorch-linked programs call it once at startup.
void enable_pth_support();

}  // namespace rwkvlite
