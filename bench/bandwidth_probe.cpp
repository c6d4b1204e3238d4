// rwkvlite-bandwidth: a STREAM-like probe of the machine's memory read bandwidth, the yardstick
// of the runtime benchmark (scripts/bench_runtime.sh): a token of a large RWKV model reads every
// weight once, so tokens/s x bytes read per token / this bandwidth says how close the runtime
// comes to the memory's limit.
//
//   rwkvlite-bandwidth [--mib N] [--passes P] [--threads 1,2]
//
// Reads a buffer of N MiB (default 4096: several times the last-level cache, so the reads come
// from memory) on each thread count, each thread summing its own contiguous slice, P times
// (default 5), and prints JSON on stdout: per thread count the best and the median pass in bytes
// per second. Best of several passes is the STREAM convention (the least disturbed pass). The
// buffer is written once before timing so every page is mapped; the sums are printed as a
// checksum so the reads cannot be optimised away. No dependencies beyond the C++ library.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <latch>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  int64_t mib = 4096;
  int passes = 5;
  std::vector<int> threads = {1, 2};
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "rwkvlite-bandwidth: %s\nusage: rwkvlite-bandwidth [--mib N] [--passes P] [--threads 1,2]\n",
               message.c_str());
  std::exit(2);
}

int64_t parse_positive(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v <= 0) usage_error(flag + " needs a positive integer, got '" + text + "'");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("rwkvlite-bandwidth [--mib N] [--passes P] [--threads 1,2]: memory read bandwidth as JSON\n");
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error("unknown option or missing value: " + flag);
    const char* value = argv[++i];
    if (flag == "--mib") {
      o.mib = parse_positive(flag, value);
    } else if (flag == "--passes") {
      o.passes = static_cast<int>(parse_positive(flag, value));
    } else if (flag == "--threads") {
      o.threads.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');) {
        o.threads.push_back(static_cast<int>(parse_positive(flag, item.c_str())));
      }
      if (o.threads.empty()) usage_error("--threads needs a list such as 1,2");
    } else {
      usage_error("unknown option: " + flag);
    }
  }
  return o;
}

// Sums a slice with eight independent accumulators, so the loop is bound by loads, not by the
// latency of one addition chain; the compiler vectorises it at -O3, with an AVX2 clone picked at
// run time where the CPU has it (the wider loads keep one core from being the limit).
__attribute__((target_clones("avx2", "default"))) uint64_t sum_slice(const uint64_t* data, size_t n) {
  uint64_t acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += data[i + k];
  }
  for (; i < n; ++i) acc[0] += data[i];
  uint64_t total = 0;
  for (uint64_t a : acc) total += a;
  return total;
}

// One pass on `threads` threads: the clock starts once every thread is ready to read and stops
// when the last one has finished its slice.
double timed_pass_seconds(const std::vector<uint64_t>& buffer, int threads, uint64_t& checksum) {
  std::latch ready(threads);
  std::atomic<bool> go{false};
  std::vector<uint64_t> sums(threads, 0);
  std::vector<std::thread> workers;
  const size_t slice = buffer.size() / threads;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const size_t begin = t * slice;
      const size_t end = t + 1 == threads ? buffer.size() : begin + slice;
      ready.count_down();
      while (!go.load(std::memory_order_acquire)) {
      }
      sums[t] = sum_slice(buffer.data() + begin, end - begin);
    });
  }
  ready.wait();
  const auto t0 = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (uint64_t s : sums) checksum += s;
  return seconds;
}

// The last-level cache as the kernel reports it ("" when sysfs does not say), for the JSON.
std::string last_level_cache() {
  std::string best;
  for (int index = 0; index < 8; ++index) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
    std::string size;
    if (f >> size) best = size;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const size_t bytes = static_cast<size_t>(o.mib) << 20;
  std::vector<uint64_t> buffer;
  try {
    buffer.resize(bytes / sizeof(uint64_t));
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "rwkvlite-bandwidth: cannot allocate %lld MiB\n", static_cast<long long>(o.mib));
    return 5;
  }
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = i * 0x9E3779B97F4A7C15ull;  // maps every page
  uint64_t checksum = 0;
  std::printf("{\n  \"probe\": \"rwkvlite-bandwidth\",\n  \"buffer_bytes\": %zu,\n  \"passes\": %d,\n", bytes, o.passes);
  std::printf("  \"last_level_cache\": \"%s\",\n  \"results\": [", last_level_cache().c_str());
  for (size_t r = 0; r < o.threads.size(); ++r) {
    const int threads = o.threads[r];
    std::vector<double> rates;
    for (int p = 0; p < o.passes; ++p) rates.push_back(bytes / timed_pass_seconds(buffer, threads, checksum));
    std::sort(rates.begin(), rates.end());
    const double median = rates.size() % 2 ? rates[rates.size() / 2]
                                           : 0.5 * (rates[rates.size() / 2 - 1] + rates[rates.size() / 2]);
    std::printf("%s\n    {\"threads\": %d, \"best_bytes_per_second\": %.0f, \"median_bytes_per_second\": %.0f, "
                "\"worst_bytes_per_second\": %.0f}",
                r ? "," : "", threads, rates.back(), median, rates.front());
  }
  std::printf("\n  ],\n  \"checksum\": \"%016llx\"\n}\n", static_cast<unsigned long long>(checksum));
  return 0;
}
