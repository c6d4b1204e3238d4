// `rwkvlite compress --calibration-cache DIR` across processes, on the tiny v5.2 model with
// configs/lowrank-aware.toml: two compresses started together on an empty cache calibrate once
// (one "miss" and one "hit" in their reports), and a compress that finds the key locked waits,
// says so, and goes on when the lock is released. The dry run reports whether the entry exists.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>

#include "tests/support/test_support.h"

using namespace rwkvlite::test;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::string fresh_dir(const std::string& name) {
  const std::string d = scratch_dir() + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::string cache_flag(const std::string& dir) { return "--calibration-cache '" + dir + "'"; }

// The shell command of one compress into `work`/<name>.rwkvlite, with `env` (assignments) and
// `options` added; stderr goes to <name>.log and the exit code to <name>.rc.
std::string compress_cmd(const std::string& work, const std::string& name, const std::string& env,
                         const std::string& options) {
  const std::string out = work + "/" + name;
  return "(RWKVLITE_NO_PROGRESS=1 " + env + " '" + binary_dir() + "/bin/rwkvlite' --log-level info compress '" +
         tiny_model_path("5v2-730K", "FP32") + "' -o '" + out + ".rwkvlite' -c '" + source_dir() +
         "/configs/lowrank-aware.toml' --set calibration.bytes=10000 --threads 1 " + options + " 2>'" + out +
         ".log'; echo $? >'" + out + ".rc')";
}

nlohmann::json calibration_report(const std::string& work, const std::string& name) {
  std::ifstream in(work + "/" + name + ".rwkvlite.report.json");
  return nlohmann::json::parse(in)["calibration"];
}

// Waits up to `seconds` for `done()`.
template <typename F>
bool wait_for(F done, int seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// What `compress --dry-run` says about the cache: "hit" or "miss" and the entry's path.
std::pair<std::string, std::string> dry_run_cache_line(const std::string& work, const std::string& cache) {
  const std::string out = work + "/dry.txt";
  const std::string cmd = "RWKVLITE_NO_PROGRESS=1 '" + binary_dir() + "/bin/rwkvlite' --log-level warn compress '" +
                          tiny_model_path("5v2-730K", "FP32") + "' -o '" + work + "/dry.rwkvlite' -c '" +
                          source_dir() + "/configs/lowrank-aware.toml' --set calibration.bytes=10000 --dry-run " +
                          cache_flag(cache) + " >'" + out + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::smatch m;
  const std::string text = read_all(out);
  REQUIRE(std::regex_search(text, m, std::regex(R"(calibration_cache +(hit|miss) \((.*)\)\n)")));
  return {m[1], m[2]};
}

}  // namespace

TEST_CASE("two compress processes started together on an empty calibration cache calibrate once",
          "[tools][calibration_cache]") {
  RWKVLITE_REQUIRE_FILE_OR_SKIP(tiny_model_path("5v2-730K", "FP32"));
  const std::string work = fresh_dir("calib-cache-concurrent");
  const std::string cache = work + "/cache";
  // One takes the directory from the flag, the other from RWKVLITE_CALIBRATION_CACHE.
  const std::string cmd = compress_cmd(work, "a", "", cache_flag(cache)) + " & " +
                          compress_cmd(work, "b", "RWKVLITE_CALIBRATION_CACHE='" + cache + "'", "") + " & wait";
  REQUIRE(std::system(cmd.c_str()) == 0);
  REQUIRE(read_all(work + "/a.rc") == "0\n");
  REQUIRE(read_all(work + "/b.rc") == "0\n");
  const nlohmann::json a = calibration_report(work, "a"), b = calibration_report(work, "b");
  INFO("a: " << a.dump() << "\nb: " << b.dump());
  CHECK(a["key"] == b["key"]);
  CHECK(((a["cache"] == "miss" && b["cache"] == "hit") || (a["cache"] == "hit" && b["cache"] == "miss")));
  const std::string hit_log = read_all(work + (a["cache"] == "hit" ? "/a.log" : "/b.log"));
  CHECK(hit_log.find("calibration: cache hit " + cache + "/" + a["key"].get<std::string>() + ".calib") !=
        std::string::npos);
  CHECK(read_all(work + "/a.rwkvlite") == read_all(work + "/b.rwkvlite"));
  CHECK(dry_run_cache_line(work, cache).first == "hit");
}

TEST_CASE("a compress that finds its calibration key locked waits for the lock", "[tools][calibration_cache]") {
  RWKVLITE_REQUIRE_FILE_OR_SKIP(tiny_model_path("5v2-730K", "FP32"));
  const std::string work = fresh_dir("calib-cache-locked");
  const std::string cache = work + "/cache";
  const auto [state, entry] = dry_run_cache_line(work, cache);
  CHECK(state == "miss");
  REQUIRE(entry.size() > 6);
  const std::string lock_path = entry.substr(0, entry.size() - 6) + ".lock";
  std::filesystem::create_directories(cache);
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  const std::string cmd = compress_cmd(work, "w", "", cache_flag(cache)) + " &";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const bool waiting = wait_for(
      [&] { return read_all(work + "/w.log").find("calibration: waiting for another process") != std::string::npos; },
      60);
  const bool finished_while_locked = std::filesystem::exists(work + "/w.rc");
  ::close(fd);  // releases the lock either way
  CHECK(waiting);
  CHECK_FALSE(finished_while_locked);
  REQUIRE(wait_for([&] { return std::filesystem::exists(work + "/w.rc") && read_all(work + "/w.rc").size() > 1; }, 120));
  CHECK(read_all(work + "/w.rc") == "0\n");
  CHECK(calibration_report(work, "w")["cache"] == "miss");  // nobody wrote the entry meanwhile
  CHECK(std::filesystem::exists(entry));
}
