#include "store/compact_model.h"

#include <regex>

#include "core/error.h"
#include "core/file_io.h"
#include "engine/build_weights.h"
#include "engine/embedding.h"
#include "engine/head.h"
#include "format/codec.h"
#include "format/model_json.h"
#include "store/encoded_projection.h"

namespace rwkvlite {
namespace {


// The y = W x matrices the builder asks the matrix provider for; everything else (norms,
// mixes, decays, LoRA factors) is decoded to FP32 and goes through the dense translation code.
bool is_provided_matrix(const std::string& name) {
  static const std::regex linear(R"(blocks\.\d+\.(att|ffn)\.(receptance|key|value|gate|output)\.weight)");
  return name == "head.weight" || std::regex_match(name, linear);
}

// Embedding rows kept in their stored encoding, decoded on lookup.
class EncodedEmbedding final : public Embedding {
 public:
  EncodedEmbedding(int64_t vocab, int64_t d, format::EncodingSpec enc, std::vector<uint8_t> bytes,
                   std::shared_ptr<ResidencyCounter> counter)
      : vocab_(vocab),
        d_(d),
        enc_(enc),
        row_bytes_(format::encoded_row_bytes(enc.encoding, d, enc.params)),
        bytes_(std::move(bytes)),
        resident_(std::move(counter), static_cast<int64_t>(bytes_.size())) {}
  int64_t vocab_size() const override { return vocab_; }
  int64_t n_embd() const override { return d_; }
  void lookup(int32_t token, float* out) const override {
    format::decode_row(&bytes_[static_cast<size_t>(token) * row_bytes_], d_, enc_.encoding, enc_.params, out);
  }
  int64_t storage_bytes() const override { return static_cast<int64_t>(bytes_.size()); }

 private:
  int64_t vocab_, d_;
  format::EncodingSpec enc_;
  size_t row_bytes_;
  std::vector<uint8_t> bytes_;
  ResidentBytes resident_;
};

}  // namespace

bool is_compact_file(const std::string& path) {
  char magic[8] = {};
  try {
    InputFile f(path);
    if (f.size() < 8) return false;
    f.read_at(0, magic, 8, "the magic");
  } catch (const Error&) {
    return false;
  }
  return std::string(magic, 8) == std::string(format::kMagic, 8);
}

CompactEngine load_compact_engine(const std::string& path, int threads) {
  auto file = std::make_shared<format::CompactFile>(format::CompactFile::open(path));
  auto counter = std::make_shared<ResidencyCounter>();
  const format::ArchInfo arch = format::arch_from_json(file->arch());

  // Small tensors decoded to FP32; they live in the engine's vectors for its whole life.
  Model small;
  small.arch = arch.arch;
  small.ln_x_eps = arch.ln_x_eps;
  small.dims = format::dims_from_json(file->dims());
  small.source_format = "rwkvlite compact";
  int64_t small_bytes = 0;
  for (const format::TensorInfo& t : file->tensors()) {
    if (is_provided_matrix(t.name) || t.name == "emb.weight" || t.name.ends_with(".lr_a") || t.name.ends_with(".lr_b")) {
      continue;
    }
    small.tensors[t.name] = file->decode_tensor(t.name);
    small_bytes += small.tensors[t.name].numel() * static_cast<int64_t>(sizeof(float));
  }
  // Decoded small tensors live in the engine's vectors for its whole life.
  counter->add(small_bytes);

  auto encoded = [file, counter](const std::string& name, int64_t rows, int64_t cols) -> std::unique_ptr<Projection> {
    const format::TensorInfo& t = file->tensor(name);
    if (t.rows != rows || t.cols != cols) {
      throw InputError("'" + name + "' is stored as " + std::to_string(t.rows) + " x " + std::to_string(t.cols) +
                       ", the model needs " + std::to_string(rows) + " x " + std::to_string(cols));
    }
    return std::make_unique<EncodedProjection>(rows, cols, t.encoding, file->read_tensor(name), counter);
  };
  WeightProviders providers;
  providers.matrix = [file, encoded](const std::string& name, int64_t rows, int64_t cols) -> std::unique_ptr<Projection> {
    const std::string base = name.substr(0, name.size() - std::string(".weight").size());
    if (file->find(base + ".lr_a")) {
      const format::TensorInfo& a = file->tensor(base + ".lr_a");
      return std::make_unique<LowRankProjection>(encoded(base + ".lr_a", a.rows, cols), encoded(base + ".lr_b", rows, a.rows));
    }
    if (!file->find(name)) throw InputError("'" + file->path() + "' has neither '" + name + "' nor its low-rank factors");
    return encoded(name, rows, cols);
  };
  providers.embedding = [&]() -> std::unique_ptr<Embedding> {
    const format::TensorInfo& t = file->tensor("emb.weight");
    return std::make_unique<EncodedEmbedding>(t.rows, t.cols, t.encoding, file->read_tensor("emb.weight"), counter);
  };

  CompactEngine out;
  EngineOptions options;
  options.threads = threads;
  out.engine = std::make_unique<Engine>(build_weights(small, std::move(providers)), options);
  out.residency = counter;
  out.reads = file->read_stats();
  out.metadata = file->metadata();
  return out;
}

}  // namespace rwkvlite
