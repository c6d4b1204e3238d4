// Limits checked on TOML text before toml++ parses it. toml++ recurses once per nesting level
// and per dotted-key segment, so a small hostile file (a header with 100,000 segments, 100,000
// nested inline arrays) would overflow the stack instead of failing. Every TOML file rwkvlite
// reads (compress configs, --set values, sweep files, check thresholds) goes through this one
// check first.
#pragma once

#include <cstddef>
#include <string>

namespace rwkvlite {

constexpr size_t kTomlMaxBytes = size_t{1} << 20;   // 1 MiB: real configs are a few KiB
constexpr int kTomlMaxDepth = 32;                   // nested [ ] / { } inside values
constexpr int kTomlMaxKeySegments = 32;             // a.b.c segments in one key or [table] header

// Counts a config may hold: far above any real one, low enough that a hostile file cannot make
// the pipeline compile or loop over millions of items.
constexpr size_t kMaxPasses = 256;               // [[pass]] tables in one config
constexpr size_t kMaxPatternsPerList = 4096;     // tensor patterns in one targets/exclude list

// Throws UsageError "<source>:<line>: ... exceeds the limit of N ..." when `text` breaks a limit.
void check_toml_limits(const std::string& text, const std::string& source_name);

}  // namespace rwkvlite
