// Paths to test data. Tests use the repository's vendored files always, and the wider
// ../shared data when present, skipping (with a message) when it is not.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <unistd.h>

namespace rwkvlite::test {

inline std::string source_dir() { return RWKVLITE_SOURCE_DIR; }
inline std::string binary_dir() { return RWKVLITE_BINARY_DIR; }

// ../shared next to the repository (a fresh clone elsewhere may not have it).
inline std::string shared_dir() { return std::string(RWKVLITE_SOURCE_DIR) + "/../shared"; }
inline std::string tiny_models_dir() { return shared_dir() + "/models/tiny-rwkv"; }
inline std::string vendored_dir() { return std::string(RWKVLITE_SOURCE_DIR) + "/third_party"; }

inline bool exists(const std::string& p) { return std::filesystem::exists(p); }

// A scratch directory unique to the running test executable, emptied at first use.
inline std::string scratch_dir() {
  static std::string dir = [] {
    std::string d = std::string(RWKVLITE_BINARY_DIR) + "/test-scratch/" + std::to_string(::getpid());
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// The tiny rwkv.cpp test models: stem, version string.
struct TinyModel {
  const char* stem;
  const char* arch;
};
inline const TinyModel kTinyModels[] = {
    {"4v0-660K", "v4"}, {"5v1-730K", "v5.1"}, {"5v2-730K", "v5.2"}, {"6v0-1m", "v6"}, {"7v0-834K", "v7"}};

// Path of a tiny model file: the vendored copy when there is one, else ../shared.
inline std::string tiny_model_path(const std::string& stem, const std::string& dtype) {
  const std::string name = "tiny-rwkv-" + stem + "-" + dtype + ".bin";
  const std::string vendored = vendored_dir() + "/tiny-rwkv/" + name;
  if (exists(vendored)) return vendored;
  return tiny_models_dir() + "/" + name;
}
inline std::string expected_logits_path(const std::string& stem) {
  const std::string name = "expected-logits-" + stem + ".bin";
  const std::string vendored = vendored_dir() + "/tiny-rwkv/" + name;
  if (exists(vendored)) return vendored;
  return tiny_models_dir() + "/" + name;
}

}  // namespace rwkvlite::test

// Skips the rest of a test case (Catch2 v2 has no SKIP): prints why and returns.
#define RWKVLITE_REQUIRE_FILE_OR_SKIP(path)                                   \
  do {                                                                        \
    if (!rwkvlite::test::exists(path)) {                                      \
      WARN("skipped: " << (path) << " is not present (needs ../shared)"); \
      return;                                                                 \
    }                                                                         \
  } while (0)
