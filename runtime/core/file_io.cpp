#include "runtime/core/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "runtime/core/error.h"

namespace rwkvlite {

uint64_t file_size_or_throw(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw InputError("cannot open '" + path + "': " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw InputError("'" + path + "' is a directory, not a file");
  if (!S_ISREG(st.st_mode)) throw InputError("'" + path + "' is not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

InputFile::InputFile(const std::string& path) : path_(path) {
  size_ = file_size_or_throw(path);
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw InputError("cannot open '" + path + "': " + std::strerror(errno));
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_at(uint64_t offset, void* dst, uint64_t n, const char* what) const {
  if (offset > size_ || n > size_ - offset) {
    throw InputError("'" + path_ + "' is truncated: " + what + " needs bytes " + std::to_string(offset) + ".." +
                     std::to_string(offset + n) + " but the file has " + std::to_string(size_) + " bytes");
  }
  auto* p = static_cast<uint8_t*>(dst);
  while (n > 0) {
    const ssize_t got = ::pread(fd_, p, std::min<uint64_t>(n, 1u << 30), static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw InputError("cannot read '" + path_ + "': " + std::strerror(errno));
    }
    if (got == 0) throw InputError("'" + path_ + "' shrank while being read (" + what + ")");
    p += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
}

std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes) {
  InputFile f(path);
  if (f.size() > max_bytes) {
    throw ResourceError("'" + path + "' has " + std::to_string(f.size()) + " bytes, more than the limit of " +
                        std::to_string(max_bytes));
  }
  std::vector<uint8_t> out(f.size());
  if (!out.empty()) f.read_at(0, out.data(), out.size(), "the file");
  return out;
}

void SequentialReader::read(void* dst, uint64_t n, const char* what) {
  file_.read_at(offset_, dst, n, what);
  offset_ += n;
}

void SequentialReader::skip(uint64_t n, const char* what) {
  if (n > remaining()) {
    throw InputError("'" + file_.path() + "' is truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                     std::to_string(offset_) + " but only " + std::to_string(remaining()) + " remain");
  }
  offset_ += n;
}

namespace {

// This machine's name, as it appears in temporary names: outputs may sit on a filesystem
// that processes of other machines write to (a Slurm sweep), whose pids mean nothing here.
std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || !name[0]) return "localhost";
  std::string s(name);
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

// The temporary prefix of `path` for processes of this machine: "PATH.tmp.HOST.".
std::string temporary_prefix(const std::string& path) { return path + ".tmp." + host_name() + "."; }

// A SIGKILL (or a power cut) runs no destructor, so a killed writer leaves PATH.tmp.HOST.PID
// behind. Before writing PATH again, its temporaries from this machine whose process is gone
// are removed. Those of live processes (another run writing the same path) and of other
// machines are left alone; a removal that fails only leaves the litter.
void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path prefix(temporary_prefix(path));
  const fs::path dir = prefix.has_parent_path() ? prefix.parent_path() : fs::path(".");
  const std::string stem = prefix.filename().string();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= stem.size() || name.compare(0, stem.size(), stem) != 0) continue;
    const std::string pid_text = name.substr(stem.size());
    if (pid_text.size() > 9 || !std::all_of(pid_text.begin(), pid_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    const long pid = std::stol(pid_text);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code remove_ec;
    fs::remove(it->path(), remove_ec);
  }
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  refuse_directory_output(path);
  remove_stale_temporaries(path);
  tmp_path_ = temporary_prefix(path) + std::to_string(::getpid());
  f_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!f_) throw InputError("cannot create '" + tmp_path_ + "': " + std::strerror(errno));
}

// A full disk, a quota or a file-size limit is a resource the user can free (exit 5); any other
// write failure is unexpected.
void AtomicFile::throw_write_error(const char* verb) const {
  const int e = errno;
  const std::string what = std::string("cannot ") + verb + " '" + tmp_path_ + "': " + std::strerror(e);
  if (e == ENOSPC || e == EDQUOT || e == EFBIG) throw ResourceError(what + " (free space or choose another output directory)");
  throw Error(what, kExitInternal);
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_path_.c_str());
}

void AtomicFile::write(const void* data, uint64_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n) throw_write_error("write");
  position_ += n;
}

void AtomicFile::write_zeros(uint64_t n) {
  static const uint8_t zeros[4096] = {};
  while (n > 0) {
    const uint64_t k = std::min<uint64_t>(n, sizeof zeros);
    write(zeros, k);
    n -= k;
  }
}

void AtomicFile::pwrite_at(uint64_t offset, const void* data, uint64_t n) {
  if (std::fflush(f_) != 0 || ::pwrite(fileno(f_), data, n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
    throw_write_error("write");
  }
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0) throw_write_error("flush");
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    throw Error("cannot rename '" + tmp_path_ + "' to '" + path_ + "': " + std::strerror(errno), kExitInternal);
  }
  committed_ = true;
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

void refuse_directory_output(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw UsageError("output '" + path + "' is a directory; name a file (for example '" +
                     (std::filesystem::path(path) / "out").string() + "')");
  }
}

void refuse_existing_output(const std::string& path, bool force) {
  refuse_directory_output(path);
  if (!force && std::filesystem::exists(path)) throw UsageError("'" + path + "' exists; pass --force to overwrite it");
}

std::string file_extension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

std::string describe_file_contents(const std::string& path) {
  uint8_t b[64] = {};
  uint64_t n = 0;
  try {
    InputFile f(path);
    n = std::min<uint64_t>(f.size(), sizeof b);
    if (n) f.read_at(0, b, n, "the first bytes");
  } catch (const Error&) {
    return "unreadable";
  }
  if (n == 0) return "an empty file";
  auto starts = [&](const char* s) { return n >= std::strlen(s) && std::memcmp(b, s, std::strlen(s)) == 0; };
  if (starts("PK\x03\x04")) return "a zip archive (a PyTorch .pth checkpoint?)";
  if (starts("version https://git-lfs")) return "a git-lfs pointer, not the model itself (run git lfs pull)";
  if (starts("GGUF")) return "a GGUF file (llama.cpp), which rwkvlite does not read";
  if (starts("fmgg")) return "an rwkv.cpp model";
  if (starts("RWKVLITE")) return "an rwkvlite compact file";
  if (n >= 9 && b[8] == '{') return "a safetensors file";
  if (b[0] == 0x80 && n > 1 && b[1] <= 5) return "a legacy (non-zip) PyTorch pickle";
  bool text = true;
  for (uint64_t i = 0; i < n; ++i) {
    if (b[i] < 9 || (b[i] > 13 && b[i] < 32 && b[i] != 27)) text = false;
  }
  if (text) return "a text file";
  return "binary data of an unknown format";
}

}  // namespace rwkvlite
