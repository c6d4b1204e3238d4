// Helpers shared by the converter tests: bit-level model comparison, expected errors, raw files.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "runtime/core/model.h"
#include "tests/support/test_support.h"

namespace rwkvlite::test {

// Elements whose bits differ (a size mismatch counts every element).
inline size_t count_bit_differences(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return n;
}

struct ModelComparison {
  size_t tensors_compared = 0;
  size_t tensors_bit_exact = 0;
  size_t elements_differing = 0;
  bool same_names_and_shapes = true;
};

// Compares every tensor of `a` with `b` bit for bit (names, shapes, values).
inline ModelComparison compare_models(const Model& a, const Model& b) {
  ModelComparison c;
  c.same_names_and_shapes = a.tensors.size() == b.tensors.size();
  for (const auto& [name, t] : a.tensors) {
    ++c.tensors_compared;
    if (!b.has(name) || b.at(name).shape != t.shape) {
      c.same_names_and_shapes = false;
      continue;
    }
    const size_t d = count_bit_differences(t.data, b.at(name).data);
    c.elements_differing += d;
    c.tensors_bit_exact += d == 0;
  }
  return c;
}

// The message of the exception of type E that f throws; fails the test if it throws none.
template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception, none was thrown");
  return {};
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const void* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_bytes(path, bytes.data(), bytes.size());
}

inline void write_text(const std::string& path, const std::string& text) { write_bytes(path, text.data(), text.size()); }

// The tiny models present here (the vendored ones always; the rest with ../shared).
inline std::vector<const TinyModel*> available_models() {
  std::vector<const TinyModel*> out;
  for (const TinyModel& m : kTinyModels) {
    if (exists(tiny_model_path(m.stem, "FP32"))) {
      out.push_back(&m);
    } else {
      WARN("skipped " << m.stem << ": " << tiny_model_path(m.stem, "FP32") << " is not present (needs ../shared)");
    }
  }
  return out;
}

}  // namespace rwkvlite::test
