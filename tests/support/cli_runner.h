// Running the built executables from tests, as a user would: stdout, stderr and the exit code
// of one command, and the checks every front-door test makes on them.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/support/test_support.h"

namespace rwkvlite::test {

using nlohmann::json;

struct Result {
  int exit_code = -1;
  std::string out, err;
};

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A scratch folder for one test case.
inline std::string case_dir(const std::string& name) {
  const std::string d = scratch_dir() + "/" + name;
  std::filesystem::create_directories(d);
  return d;
}

// Runs build/bin/`tool` with `args` (a shell fragment) from the source directory, so relative
// paths read as in README, capturing stdout, stderr and the exit code.
inline Result run(const std::string& tool, const std::string& args) {
  static int calls = 0;
  const std::string err_path = scratch_dir() + "/stderr-" + std::to_string(++calls) + ".txt";
  const std::string cmd =
      "cd '" + source_dir() + "' && '" + binary_dir() + "/bin/" + tool + "' " + args + " 2>'" + err_path + "'";
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_all(err_path);
  return r;
}

// A failure as documented: the exit code, a message on stderr, nothing on stdout.
inline void check_fails(const Result& r, int exit_code) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == exit_code);
  CHECK(r.out.empty());
  CHECK_FALSE(r.err.empty());
}

inline json parse_stdout(const Result& r) {
  INFO("exit " << r.exit_code << ", stdout: " << r.out.substr(0, 400) << "\nstderr: " << r.err);
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  return j;
}

}  // namespace rwkvlite::test
