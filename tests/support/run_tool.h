// Running a built executable (build/bin) as a user would, for the tests in tests/tools/:
// from the source directory, so relative paths read as in the docs, with stdout, stderr and
// the exit code captured. Also the small file helpers those tests need.
#pragma once

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/support/test_support.h"

namespace rwkvlite::test {

struct ToolResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_file_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// build/bin/`tool` with `args` (a shell fragment), run from the source directory.
inline ToolResult run_tool(const std::string& tool, const std::string& args) {
  static int calls = 0;
  const std::string err_path = scratch_dir() + "/tool-stderr-" + std::to_string(++calls) + ".txt";
  const std::string cmd =
      "cd '" + source_dir() + "' && '" + binary_dir() + "/bin/" + tool + "' " + args + " 2>'" + err_path + "'";
  ToolResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file_bytes(err_path);
  return r;
}

}  // namespace rwkvlite::test
