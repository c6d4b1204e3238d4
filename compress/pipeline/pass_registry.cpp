#include "compress/pipeline/pass_registry.h"

#include "runtime/core/error.h"

namespace rwkvlite {

void PassRegistry::add(const std::string& type, PassFactory factory) {
  if (!factory) throw Error("pass type '" + type + "' has no factory", kExitInternal);
  if (factories_.count(type)) throw Error("pass type '" + type + "' is registered twice", kExitInternal);
  factories_.emplace(type, std::move(factory));
}

const PassFactory* PassRegistry::find(const std::string& type) const {
  auto it = factories_.find(type);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> PassRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

}  // namespace rwkvlite
