// What every fuzz target shares: the input as a path backed by memory (the readers take paths,
// so a memfd stands in for a file without touching the disk), and the rule that only rwkvlite's
// own errors are expected outcomes. Any other exception escapes LLVMFuzzerTestOneInput and
// aborts the run, which libFuzzer (and the replay driver) report as a finding.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "runtime/core/error.h"

namespace rwkvlite::fuzz {

// An anonymous in-memory file holding the input, named by /proc/self/fd/<n> while alive.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("rwkvlite-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) throw std::logic_error("memfd_create failed");  // the harness, not the reader
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) throw std::logic_error("writing the memfd failed");
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  ~MemoryFile() { ::close(fd_); }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Runs `body`; rwkvlite::Error (InputError, UsageError, ResourceError) is the documented way
// to refuse an input and is swallowed. Everything else propagates.
template <typename Body>
int run_expecting_only_rwkvlite_errors(Body&& body) {
  try {
    body();
  } catch (const rwkvlite::Error&) {
  }
  return 0;
}

}  // namespace rwkvlite::fuzz
