// The only translation unit that includes LibTorch headers (just the zip container's, which
// compile quickly); everything else about .pth files is in torch_pickle.cpp.
#include "converters/pth_file.h"

#include <caffe2/serialize/inline_container.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <new>

#include "converters/model_io.h"
#include "converters/torch_pickle.h"
#include "converters/zip_directory.h"
#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/core/file_io.h"

namespace rwkvlite {
namespace {

namespace ser = caffe2::serialize;

// LibTorch reads the archive through this adapter, from inside miniz's C code, so it must not
// throw: a failed read returns no bytes, which LibTorch reports as a corrupt archive.
class FileReadAdapter final : public ser::ReadAdapterInterface {
 public:
  explicit FileReadAdapter(const InputFile& file) : file_(file) {}
  size_t size() const override { return file_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* what) const override {
    if (pos >= file_.size()) return 0;
    n = static_cast<size_t>(std::min<uint64_t>(n, file_.size() - pos));
    try {
      file_.read_at(pos, buf, n, what);
    } catch (...) {
      return 0;
    }
    return n;
  }

 private:
  const InputFile& file_;
};

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// A LibTorch error's message without its C++ backtrace, on one line.
std::string torch_message(const c10::Error& e) {
  std::string m = e.what_without_backtrace();
  m = m.substr(0, m.find('\n'));
  return m;
}

// Runs one archive operation, turning LibTorch's errors into InputError. A hostile archive can
// declare a compressed record of any size, which LibTorch allocates before inflating it.
template <typename F>
auto archive_op(const std::string& where, const std::string& doing, F&& op) -> decltype(op()) {
  try {
    return op();
  } catch (const c10::Error& e) {
    throw InputError(where + " is a corrupt or foreign zip archive (" + doing + ": " + torch_message(e) + ")");
  } catch (const std::bad_alloc&) {
    throw InputError(where + ": the archive declares a record too large to read (" + doing + ")");
  }
}

std::string record_list(ser::PyTorchStreamReader& reader) {
  std::vector<std::string> names = reader.getAllRecords();
  std::string list;
  for (size_t i = 0; i < names.size() && i < 5; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 5) list += ", ...";
  return list.empty() ? "nothing" : list;
}

// Destination of PyTorchStreamWriter's bytes. It always reports every byte written: LibTorch
// 1.13 cannot recover from a short write (its position check then fails again in the writer's
// destructor, which terminates the process). A failure is recorded instead and rethrown by the
// caller after the operation; later bytes are discarded.
class ZipSink {
 public:
  explicit ZipSink(AtomicFile& out) : out_(out) {}
  size_t write(const void* data, size_t n) noexcept {
    if (!error_ && !abandoned_) {
      try {
        out_.write(data, n);
      } catch (...) {
        error_ = std::current_exception();
      }
    }
    return n;
  }
  void rethrow_if_failed() const {
    if (error_) std::rethrow_exception(error_);
  }
  void abandon() { abandoned_ = true; }

 private:
  AtomicFile& out_;
  std::exception_ptr error_;
  bool abandoned_ = false;
};

}  // namespace

Model read_pth(const std::string& path) {
  const std::string where = "'" + path + "'";
  InputFile file(path);
  uint8_t magic[4] = {};
  if (file.size() >= 4) file.read_at(0, magic, 4, "the file magic");
  if (magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= 5) {
    throw InputError(where + " is a legacy PyTorch checkpoint (a bare pickle, as torch < 1.6 wrote them): re-save it "
                     "with a newer torch, e.g. torch.save(torch.load(old_path), new_path), then read the new file");
  }
  if (!(magic[0] == 'P' && magic[1] == 'K')) {
    throw InputError(where + " is not a PyTorch .pth checkpoint (a zip archive): it looks like " +
                     describe_file_contents(path));
  }

  auto adapter = std::make_shared<FileReadAdapter>(file);
  std::unique_ptr<ser::PyTorchStreamReader> reader = archive_op(where, "opening the archive", [&] {
    return std::make_unique<ser::PyTorchStreamReader>(std::shared_ptr<ser::ReadAdapterInterface>(adapter));
  });
  // Sizes come from rwkvlite's own reading of the zip directory, before anything is inflated.
  const std::map<std::string, ZipEntry> directory = read_zip_directory(file, where);
  auto entry_of = [&](const std::string& record) -> const ZipEntry& {
    const auto it = directory.find(record);
    if (it == directory.end()) throw InputError(where + ": the zip directory has no entry for " + record);
    return it->second;
  };
  if (!archive_op(where, "looking for data.pkl", [&] { return reader->hasRecord("data.pkl"); })) {
    throw InputError(where + " is a zip archive without data.pkl, so not a torch.save checkpoint (it holds " +
                     archive_op(where, "listing records", [&] { return record_list(*reader); }) + ")");
  }
  auto check_crc = [&](const std::string& record, const ZipEntry& entry, const void* data, size_t size) {
    const uint32_t crc = zip_crc32(static_cast<const uint8_t*>(data), size);
    if (crc != entry.crc32) {
      throw InputError(where + ": record " + record + " is corrupt (its CRC-32 is " + hex32(crc) +
                       ", the zip directory says " + hex32(entry.crc32) + ")");
    }
  };
  std::vector<uint8_t> pickle;
  {
    const ZipEntry& entry = entry_of("data.pkl");
    if (entry.uncompressed_size > kTorchMaxPickleBytes) {
      throw InputError(where + ": data.pkl declares " + std::to_string(entry.uncompressed_size) +
                       " bytes, more than the limit of " + std::to_string(kTorchMaxPickleBytes) + " for a state dict");
    }
    auto [data, size] = archive_op(where, "reading data.pkl", [&] { return reader->getRecord("data.pkl"); });
    check_crc("data.pkl", entry, data.get(), size);
    const auto* bytes = static_cast<const uint8_t*>(data.get());
    pickle.assign(bytes, bytes + size);
  }
  const std::vector<TorchTensorRef> refs = parse_torch_state_dict(pickle, where);

  // Each storage is read once, however many tensors view it, and released before the next.
  std::map<std::string, std::vector<const TorchTensorRef*>> by_storage;
  for (const TorchTensorRef& t : refs) by_storage[t.storage_key].push_back(&t);
  Model m;
  m.source_format = "pth";
  for (const auto& [key, views] : by_storage) {
    const std::string record = "data/" + key;
    const uint64_t needed = torch_storage_bytes(*views[0]);
    // No stored record can be larger than the file holding it; checked before LibTorch allocates.
    if (needed > file.size()) {
      throw InputError(where + ": storage '" + key + "' of tensor '" + views[0]->name + "' declares " +
                       std::to_string(needed) + " bytes, more than the whole file");
    }
    if (!archive_op(where, "looking for " + record, [&] { return reader->hasRecord(record); })) {
      throw InputError(where + ": the archive has no record " + record + " (the storage of tensor '" +
                       views[0]->name + "')");
    }
    const ZipEntry& entry = entry_of(record);
    if (entry.uncompressed_size != needed) {
      throw InputError(where + ": record " + record + " declares " + std::to_string(entry.uncompressed_size) +
                       " bytes in the zip directory but tensor '" + views[0]->name + "' says its storage has " +
                       std::to_string(needed));
    }
    auto [data, size] = archive_op(where, "reading " + record, [&] { return reader->getRecord(record); });
    check_crc(record, entry, data.get(), size);
    if (size != needed) {
      throw InputError(where + ": record " + record + " has " + std::to_string(size) + " bytes but tensor '" +
                       views[0]->name + "' says its storage has " + std::to_string(needed));
    }
    for (const TorchTensorRef* t : views) {
      m.tensors[t->name] = Tensor(t->shape, gather_torch_tensor(*t, static_cast<const uint8_t*>(data.get())));
      m.source_dtypes[t->name] = torch_dtype_name(t->dtype);
    }
  }
  finalize_and_validate(m, where);
  m.ln_x_eps = default_ln_x_eps(m.arch);
  return m;
}

void write_pth(const Model& model, const std::string& path, PthDtype dtype) {
  const std::vector<std::string> names = ordered_tensor_names(model);
  if (names.size() != model.tensors.size()) {
    // Writing only the architecture's tensors would silently drop the others.
    throw Error("write_pth: the model has tensors outside its architecture's table (was it validated?)", kExitInternal);
  }
  std::vector<TorchPickleEntry> entries;
  for (const std::string& name : names) entries.push_back({name, dtype, model.at(name).shape});
  const std::vector<uint8_t> pickle = pickle_torch_state_dict(entries);

  AtomicFile out(path);
  ZipSink sink(out);
  // The archive is named "archive" (LibTorch's name when writing to a function), not after the
  // output file, so the bytes depend on the model only. Records follow torch.save's order:
  // data.pkl, the storages, then (in writeEndOfFile) the version record.
  auto writer = std::make_unique<ser::PyTorchStreamWriter>(
      [&sink](const void* data, size_t n) { return sink.write(data, n); });
  auto add = [&](const std::string& record, const void* data, size_t n) {
    try {
      writer->writeRecord(record, data, n);
    } catch (const c10::Error& e) {
      throw Error("cannot write '" + path + "': " + torch_message(e), kExitInternal);
    }
    sink.rethrow_if_failed();
  };
  try {
    add("data.pkl", pickle.data(), pickle.size());
    std::vector<uint8_t> buffer;
    for (size_t i = 0; i < names.size(); ++i) {
      const Tensor& t = model.at(names[i]);
      buffer.resize(t.data.size() * dense_dtype_size(dtype));
      encode_dense(t.data.data(), t.data.size(), dtype, buffer.data(), names[i]);
      add("data/" + std::to_string(i), buffer.data(), buffer.size());
    }
    try {
      writer->writeEndOfFile();
    } catch (const c10::Error& e) {
      throw Error("cannot write '" + path + "': " + torch_message(e), kExitInternal);
    }
    sink.rethrow_if_failed();
  } catch (...) {
    // The writer's destructor finishes an unfinished archive and, in LibTorch 1.13, terminates
    // the process if that fails. Finish it into the void now; if even that fails, leak the
    // writer rather than run its destructor. The temporary file is removed with `out`.
    sink.abandon();
    try {
      if (!writer->finalized()) writer->writeEndOfFile();
    } catch (...) {
      (void)writer.release();
    }
    throw;
  }
  writer.reset();
  out.commit();
}

void enable_pth_support() { register_pth_io(&read_pth, &write_pth); }

}  // namespace rwkvlite
