// Bounded, checked file access shared by every reader and writer.
//
// Readers never trust a size from a file before checking it against what the file can hold,
// and writers never leave a half-written output: AtomicFile writes to a temporary sibling and
// renames it into place only on commit().
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace rwkvlite {

// Size of a regular file in bytes; throws InputError if it is missing, a directory or unreadable.
uint64_t file_size_or_throw(const std::string& path);

// Whole file into memory, refusing files larger than max_bytes (ResourceError).
std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes);

// A read-only file with positioned reads that report truncation as InputError.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // Reads exactly n bytes at offset; `what` names the part being read in the error message.
  void read_at(uint64_t offset, void* dst, uint64_t n, const char* what) const;
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Sequential reader over an InputFile with a cursor, for formats read front to back.
class SequentialReader {
 public:
  explicit SequentialReader(const InputFile& f) : file_(f) {}
  void read(void* dst, uint64_t n, const char* what);
  template <typename T>
  T read_pod(const char* what) {
    T v;
    read(&v, sizeof v, what);
    return v;
  }
  void skip(uint64_t n, const char* what);
  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return file_.size() - offset_; }
  bool at_end() const { return offset_ == file_.size(); }

 private:
  const InputFile& file_;
  uint64_t offset_ = 0;
};

// Writes `path` atomically: data goes to a temporary file in the same directory, which
// commit() flushes, fsyncs and renames over `path`. Destroying an uncommitted AtomicFile
// removes the temporary, so a crash or an exception never leaves a half-written output.
// The temporary is PATH.tmp.HOST.PID; one left by a killed process of this machine is removed
// the next time PATH is written.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, uint64_t n);
  void write_zeros(uint64_t n);
  void pwrite_at(uint64_t offset, const void* data, uint64_t n);  // patch an earlier region
  uint64_t position() const { return position_; }
  void commit();

 private:
  [[noreturn]] void throw_write_error(const char* verb) const;

  std::string path_, tmp_path_;
  FILE* f_ = nullptr;
  uint64_t position_ = 0;
  bool committed_ = false;
};

// `bytes` into `path` through an AtomicFile: all of it or, on any failure, nothing.
void write_file_atomically(const std::string& path, const std::string& bytes);

// The one overwrite guard of every command that writes an output file: throws UsageError
// "'PATH' exists; pass --force to overwrite it" when `path` exists and `force` is false.
// Checked before any work starts, so a long run never ends by refusing to write.
// Also refuses a directory (even with --force), via refuse_directory_output.
void refuse_existing_output(const std::string& path, bool force);
// UsageError "output 'PATH' is a directory" when `path` is one; AtomicFile checks it too.
void refuse_directory_output(const std::string& path);

// One short phrase saying what a file looks like from its first bytes ("a zip archive (PyTorch
// .pth checkpoint)", "a git-lfs pointer", "a GGUF file", "an rwkv.cpp model", "a safetensors
// file", "an rwkvlite compact file", "text", "empty"), for error messages on a wrong format.
std::string describe_file_contents(const std::string& path);

// Lower-cased extension including the dot (".pth"), or "" if none.
std::string file_extension(const std::string& path);

}  // namespace rwkvlite
