#include "compress/pipeline/calibration_cache.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/core/file_io.h"
#include "runtime/core/version.h"
#include "compress/pipeline/calibration.h"

namespace rwkvlite {
namespace {

static_assert(std::endian::native == std::endian::little, "the cache file is written in host byte order");

constexpr char kMagic[8] = {'R', 'W', 'K', 'V', 'L', 'C', 'A', 'L'};

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Bytes from the start of the file to the end of the fixed header (up to the counts).
uint64_t header_bytes(const CalibrationCacheKey& key) {
  return sizeof kMagic + 4 + 4 + 16 + 8 + key.description.size() + 6 * 8;
}

// The whole file size `shape` implies, checked against the file before anything is read.
uint64_t file_bytes(const CalibrationCacheKey& key, const CalibrationShape& s) {
  uint64_t n = header_bytes(key);
  for (const auto& [name, d] : s.projection_dims) {
    n += 8 + name.size() + 8 + static_cast<uint64_t>(d) * static_cast<uint64_t>(d) * 8;
  }
  const auto rows = static_cast<uint64_t>(s.n_samples) * static_cast<uint64_t>(s.n_embd) * 4;
  n += static_cast<uint64_t>(s.n_layer) * rows + rows + static_cast<uint64_t>(s.n_layer) * 8;
  return n + 8;  // the checksum
}

// Writes and hashes.
class HashedWriter {
 public:
  explicit HashedWriter(AtomicFile& f) : f_(f), st_(XXH64_createState()) { XXH64_reset(st_, 0); }
  ~HashedWriter() { XXH64_freeState(st_); }
  HashedWriter(const HashedWriter&) = delete;
  HashedWriter& operator=(const HashedWriter&) = delete;
  void bytes(const void* p, uint64_t n) {
    f_.write(p, n);
    XXH64_update(st_, p, n);
  }
  template <typename T>
  void pod(T v) {
    bytes(&v, sizeof v);
  }
  void text(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void finish() {
    const uint64_t h = XXH64_digest(st_);
    f_.write(&h, sizeof h);
  }

 private:
  AtomicFile& f_;
  XXH64_state_t* st_;
};

// Reads and hashes; every check names the field, for the one warning line.
class HashedReader {
 public:
  explicit HashedReader(const InputFile& f) : r_(f), st_(XXH64_createState()) { XXH64_reset(st_, 0); }
  ~HashedReader() { XXH64_freeState(st_); }
  HashedReader(const HashedReader&) = delete;
  HashedReader& operator=(const HashedReader&) = delete;
  void bytes(void* p, uint64_t n, const char* what) {
    r_.read(p, n, what);
    XXH64_update(st_, p, n);
  }
  template <typename T>
  T pod(const char* what) {
    T v;
    bytes(&v, sizeof v, what);
    return v;
  }
  // A field that must equal what the model and the request imply.
  void expect(int64_t want, const char* what) {
    const auto got = pod<int64_t>(what);
    if (got != want) {
      throw InputError(std::string(what) + " is " + std::to_string(got) + ", expected " + std::to_string(want));
    }
  }
  void expect_text(const std::string& want, const char* what) {
    const auto n = pod<uint64_t>(what);
    if (n != want.size()) throw InputError(std::string(what) + " has the wrong length");
    std::string got(want.size(), '\0');
    bytes(got.data(), got.size(), what);
    if (got != want) throw InputError(std::string(what) + " does not match");
  }
  void check_sum() {
    const uint64_t want = XXH64_digest(st_);
    uint64_t got = 0;
    r_.read(&got, sizeof got, "checksum");
    if (got != want) throw InputError("checksum mismatch (the file is corrupted)");
  }

 private:
  SequentialReader r_;
  XXH64_state_t* st_;
};

template <typename Matrix>
void require_finite(const Matrix& m, const std::string& what) {
  if (!m.allFinite()) throw InputError(what + " holds non-finite values");
}

// An exclusive flock held for the object's life; the lock file is left in place (removing it
// would let a waiter and a newcomer lock two different files).
class ExclusiveFileLock {
 public:
  ExclusiveFileLock(const std::string& path, const std::string& key) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw UsageError("calibration cache: cannot open the lock file '" + path + "': " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    if (errno != EWOULDBLOCK) fail(path);
    spdlog::info("calibration: waiting for another process computing key {} (lock {})", key, path);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) fail(path);
    }
  }
  ~ExclusiveFileLock() { ::close(fd_); }  // closing releases the lock
  ExclusiveFileLock(const ExclusiveFileLock&) = delete;
  ExclusiveFileLock& operator=(const ExclusiveFileLock&) = delete;

 private:
  [[noreturn]] void fail(const std::string& path) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    throw UsageError("calibration cache: cannot lock '" + path + "': " + why);
  }
  int fd_ = -1;
};

}  // namespace

CalibrationCacheKey calibration_cache_key(const CalibrationCacheInputs& in) {
  // NaN (the file's epsilon) is written as null; an override as its exact bits' decimal.
  nlohmann::ordered_json ln_x_eps = nullptr;
  if (!std::isnan(in.ln_x_eps)) ln_x_eps = fmt::format("{:.9g}", in.ln_x_eps);
  const nlohmann::ordered_json d = {{"format", kCalibrationCacheVersion},
                                    {"tool_version", RWKVLITE_VERSION},
                                    {"model_xxh64", in.model_xxh64},
                                    {"ln_x_eps", ln_x_eps},
                                    {"text_xxh64", in.text_xxh64},
                                    {"tokens_xxh64", in.tokens_xxh64},
                                    {"offset", in.calibration.offset},
                                    {"bytes", in.calibration.bytes},
                                    {"samples", in.calibration.samples},
                                    {"interleave_zeros", in.calibration.interleave_zeros},
                                    {"projections", in.projections}};
  CalibrationCacheKey key;
  key.description = d.dump();
  key.key = hex64(XXH64(key.description.data(), key.description.size(), 0));
  return key;
}

CalibrationShape calibration_shape(const Model& model, const std::set<std::string>& projections, int64_t tokens,
                                   int64_t max_samples) {
  CalibrationShape s;
  s.tokens = tokens;
  s.sample_stride = calibration_sample_stride(tokens, max_samples);
  s.n_samples = (tokens + s.sample_stride - 1) / s.sample_stride;
  s.n_layer = model.dims.n_layer;
  s.n_embd = model.dims.n_embd;
  for (const std::string& name : projections) s.projection_dims[name] = model.at(name).cols();
  return s;
}

std::string calibration_cache_path(const std::string& dir, const std::string& key) {
  return (std::filesystem::path(dir) / (key + ".calib")).string();
}

void write_calibration_cache(const std::string& path, const CalibrationCacheKey& key, const CalibrationShape& shape,
                             const CalibrationData& data) {
  // An entry that would not read back is not written.
  bool fits = data.tokens == shape.tokens && data.sample_stride == shape.sample_stride &&
              data.input_second_moment.size() == shape.projection_dims.size() &&
              data.ffn_key_inputs.size() == static_cast<size_t>(shape.n_layer) &&
              data.ffn_active_fraction.size() == static_cast<size_t>(shape.n_layer) &&
              data.head_inputs.rows() == shape.n_samples && data.head_inputs.cols() == shape.n_embd;
  for (const auto& rows : data.ffn_key_inputs) fits = fits && rows.rows() == shape.n_samples && rows.cols() == shape.n_embd;
  for (const auto& [name, d] : shape.projection_dims) {
    const auto it = data.input_second_moment.find(name);
    fits = fits && it != data.input_second_moment.end() && it->second.rows() == d && it->second.cols() == d;
  }
  if (!fits) throw Error("the statistics do not have the shape the model implies", kExitInternal);
  AtomicFile f(path);
  HashedWriter w(f);
  w.bytes(kMagic, sizeof kMagic);
  w.pod<uint32_t>(kCalibrationCacheVersion);
  w.pod<uint32_t>(0);
  w.bytes(key.key.data(), 16);
  w.text(key.description);
  for (int64_t v : {shape.tokens, shape.sample_stride, shape.n_layer, shape.n_embd, shape.n_samples,
                    static_cast<int64_t>(shape.projection_dims.size())}) {
    w.pod<int64_t>(v);
  }
  for (const auto& [name, d] : shape.projection_dims) {
    const Eigen::MatrixXd& m = data.input_second_moment.at(name);
    w.text(name);
    w.pod<int64_t>(d);
    w.bytes(m.data(), static_cast<uint64_t>(m.size()) * sizeof(double));
  }
  for (const CalibrationData::Rows& rows : data.ffn_key_inputs) {
    w.bytes(rows.data(), static_cast<uint64_t>(rows.size()) * sizeof(float));
  }
  w.bytes(data.head_inputs.data(), static_cast<uint64_t>(data.head_inputs.size()) * sizeof(float));
  w.bytes(data.ffn_active_fraction.data(), data.ffn_active_fraction.size() * sizeof(double));
  w.finish();
  f.commit();
}

CalibrationData read_calibration_cache(const std::string& path, const CalibrationCacheKey& key,
                                       const CalibrationShape& shape) {
  const InputFile f(path);
  // The size first: a truncated file, or one whose header claims other dimensions, is refused
  // here, before any allocation.
  const uint64_t want_bytes = file_bytes(key, shape);
  if (f.size() != want_bytes) {
    throw InputError("it has " + std::to_string(f.size()) + " bytes, expected " + std::to_string(want_bytes));
  }
  HashedReader r(f);
  char magic[sizeof kMagic];
  r.bytes(magic, sizeof magic, "magic");
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) throw InputError("it is not a calibration cache file");
  const auto version = r.pod<uint32_t>("version");
  if (version != kCalibrationCacheVersion) {
    throw InputError("format version " + std::to_string(version) + ", expected " +
                     std::to_string(kCalibrationCacheVersion));
  }
  if (r.pod<uint32_t>("reserved") != 0) throw InputError("reserved field is not 0");
  std::string stored_key(16, '\0');
  r.bytes(stored_key.data(), 16, "key");
  if (stored_key != key.key) throw InputError("it holds key " + stored_key);
  r.expect_text(key.description, "description");
  r.expect(shape.tokens, "tokens");
  r.expect(shape.sample_stride, "sample_stride");
  r.expect(shape.n_layer, "n_layer");
  r.expect(shape.n_embd, "n_embd");
  r.expect(shape.n_samples, "n_samples");
  r.expect(static_cast<int64_t>(shape.projection_dims.size()), "n_projections");

  CalibrationData data;
  data.tokens = shape.tokens;
  data.sample_stride = shape.sample_stride;
  for (const auto& [name, d] : shape.projection_dims) {
    r.expect_text(name, "projection name");
    r.expect(d, "projection dim");
    Eigen::MatrixXd& m = data.input_second_moment[name];
    m.resize(d, d);
    r.bytes(m.data(), static_cast<uint64_t>(m.size()) * sizeof(double), "second moment");
  }
  data.ffn_key_inputs.assign(static_cast<size_t>(shape.n_layer), CalibrationData::Rows(shape.n_samples, shape.n_embd));
  for (CalibrationData::Rows& rows : data.ffn_key_inputs) {
    r.bytes(rows.data(), static_cast<uint64_t>(rows.size()) * sizeof(float), "ffn_key_inputs");
  }
  data.head_inputs.resize(shape.n_samples, shape.n_embd);
  r.bytes(data.head_inputs.data(), static_cast<uint64_t>(data.head_inputs.size()) * sizeof(float), "head_inputs");
  data.ffn_active_fraction.resize(static_cast<size_t>(shape.n_layer));
  r.bytes(data.ffn_active_fraction.data(), data.ffn_active_fraction.size() * sizeof(double), "ffn_active_fraction");
  r.check_sum();

  // xxh64 guards against accidents, not against a crafted file: values the passes would turn
  // into NaNs or out-of-range indices are refused too.
  for (const auto& [name, m] : data.input_second_moment) require_finite(m, "the second moment of " + name);
  for (const auto& rows : data.ffn_key_inputs) require_finite(rows, "ffn_key_inputs");
  require_finite(data.head_inputs, "head_inputs");
  for (double a : data.ffn_active_fraction) {
    if (!(a >= 0.0 && a <= 1.0)) throw InputError("ffn_active_fraction is outside [0, 1]");
  }
  return data;
}

CachedCalibration calibration_through_cache(const std::string& dir, const CalibrationCacheKey& key,
                                            const CalibrationShape& shape,
                                            const std::function<CalibrationData()>& compute) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UsageError("calibration cache: cannot create the directory '" + dir + "': " + ec.message());
  const ExclusiveFileLock lock((std::filesystem::path(dir) / (key.key + ".lock")).string(), key.key);

  CachedCalibration out;
  out.path = calibration_cache_path(dir, key.key);
  if (std::filesystem::exists(out.path, ec)) {
    try {
      out.data = read_calibration_cache(out.path, key, shape);
      out.hit = true;
      spdlog::info("calibration: cache hit {} (key {})", out.path, key.key);
      return out;
    } catch (const InputError& e) {
      spdlog::warn("calibration: ignoring the cache file {}: {}; recomputing", out.path, e.what());
    }
  }
  spdlog::info("calibration: cache miss, computing (key {})", key.key);
  out.data = compute();
  try {
    write_calibration_cache(out.path, key, shape, out.data);
    spdlog::info("calibration: cached to {}", out.path);
  } catch (const Error& e) {
    spdlog::warn("calibration: could not write the cache file {}: {}", out.path, e.what());
  }
  return out;
}

}  // namespace rwkvlite
