#include "compress/pipeline/compressed_model.h"

#include "runtime/core/arch.h"
#include "runtime/core/error.h"
#include "runtime/format/encoding.h"

namespace rwkvlite {

namespace {

// The canonical writing order of the model's tensors; `value_of(name)` gives each one's values.
template <typename ValueOf>
CompressedModel dense_tensors_in_order(const Model& model, ValueOf value_of) {
  CompressedModel c;
  c.arch = model.arch;
  c.dims = model.dims;
  c.ln_x_eps = model.ln_x_eps;
  for (const std::string& name : ordered_tensor_names(model)) {
    StoredTensor t;
    t.name = name;
    t.values = value_of(name);
    c.put(std::move(t));
  }
  return c;
}

}  // namespace

CompressedModel CompressedModel::from_dense(const Model& model) {
  return dense_tensors_in_order(model, [&](const std::string& name) { return model.at(name); });
}

CompressedModel CompressedModel::from_dense(Model&& model) {
  return dense_tensors_in_order(model, [&](const std::string& name) { return std::move(model.tensors.at(name)); });
}

CompressedModel CompressedModel::shapes_of(const Model& model) {
  return dense_tensors_in_order(model, [&](const std::string& name) { return shape_only(model.at(name).shape); });
}

int64_t StoredTensor::stored_bytes() const {
  return format::encoded_tensor_bytes(encoding, values.rows(), values.cols());
}

CompressedModel CompressedModel::shapes_only() const {
  CompressedModel c;
  c.arch = arch;
  c.dims = dims;
  c.ln_x_eps = ln_x_eps;
  c.file_metadata = file_metadata;
  for (const StoredTensor& t : tensors_) {
    StoredTensor s;
    s.name = t.name;
    s.values.shape = t.values.shape;
    s.encoding = t.encoding;
    s.row_addressable = t.row_addressable;
    c.tensors_.push_back(std::move(s));
  }
  c.reindex();
  return c;
}

StoredTensor& CompressedModel::at(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("compressed model has no tensor '" + name + "'", kExitInternal);
  return tensors_[it->second];
}

const StoredTensor& CompressedModel::at(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("compressed model has no tensor '" + name + "'", kExitInternal);
  return tensors_[it->second];
}

StoredTensor& CompressedModel::put(StoredTensor t, const std::string& after) {
  auto it = index_.find(t.name);
  if (it != index_.end()) {
    tensors_[it->second] = std::move(t);
    return tensors_[it->second];
  }
  size_t pos = tensors_.size();
  if (!after.empty()) {
    auto a = index_.find(after);
    if (a == index_.end()) throw Error("compressed model has no tensor '" + after + "'", kExitInternal);
    pos = a->second + 1;
  }
  const std::string name = t.name;
  tensors_.insert(tensors_.begin() + static_cast<std::ptrdiff_t>(pos), std::move(t));
  reindex();
  return tensors_[index_.at(name)];
}

void CompressedModel::remove(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  tensors_.erase(tensors_.begin() + static_cast<std::ptrdiff_t>(it->second));
  reindex();
}

std::vector<std::string> CompressedModel::names() const {
  std::vector<std::string> out;
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

void CompressedModel::reindex() {
  index_.clear();
  for (size_t i = 0; i < tensors_.size(); ++i) index_[tensors_[i].name] = i;
}

Tensor CompressedModel::shape_only(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  return t;
}

}  // namespace rwkvlite
