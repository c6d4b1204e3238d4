// Reading evaluation and calibration text: byte ranges of a file, with the one split the whole
// project uses (bytes [0, 1,000,000) of tinyshakespeare for training and calibration, the rest
// held out), and the 0x00 interleaving the tiny v6 model was trained on.
#pragma once

#include <cstdint>
#include <string>

namespace rwkvlite {

constexpr uint64_t kHeldOutStart = 1000000;  // first held-out byte of the bundled text

// Bytes [offset, offset + max_bytes) of a text file (to its end when max_bytes is 0).
// InputError for a missing or unreadable file or an empty range.
std::string read_text_range(const std::string& path, uint64_t offset, uint64_t max_bytes);

// "c0 c1 ..." -> "c0 00 c1 00 ...": the layout the tiny v6 model was trained on.
std::string interleave_zero_bytes(const std::string& text);

// Path of the bundled text (third_party/data/tinyshakespeare.txt), honouring RWKVLITE_DATA_DIR.
std::string bundled_text_path();
// Path of a vendored data file relative to the data directory (RWKVLITE_DATA_DIR or the build's).
std::string data_path(const std::string& relative);

}  // namespace rwkvlite
