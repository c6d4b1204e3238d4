// Error types shared by every rwkvlite library and CLI.
//
// Each error carries the process exit code the CLIs use for it, so a failure deep in a
// reader surfaces as one clear line and the documented exit status:
//   0 ok, 1 internal error, 2 usage or config error, 3 bad input file,
//   4 accuracy or memory gate failed (`rwkvlite check`: the model is worse than allowed),
//   5 resource limit exceeded, 6 some items of a batch or sweep failed (the others finished).
#pragma once

#include <stdexcept>
#include <string>

namespace rwkvlite {

enum ExitCode : int {
  kExitOk = 0,
  kExitInternal = 1,
  kExitUsage = 2,
  kExitBadInput = 3,
  kExitGateFailed = 4,
  kExitResourceLimit = 5,
  kExitPartialFailure = 6,
};

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, int exit_code) : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// A file (model, text, config) that cannot be used as given: missing, truncated, corrupted,
// wrong shape, non-finite weights.
class InputError : public Error {
 public:
  explicit InputError(const std::string& message) : Error(message, kExitBadInput) {}
};

// A command line or configuration that asks for something impossible or unknown.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message, kExitUsage) {}
};

// A limit the user or the tool set (memory budget, header size cap) would be exceeded.
class ResourceError : public Error {
 public:
  explicit ResourceError(const std::string& message) : Error(message, kExitResourceLimit) {}
};

}  // namespace rwkvlite
