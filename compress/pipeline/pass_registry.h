// The pass types a config may name, filled explicitly: compress/passes/builtin_passes.h adds
// the built-in ones; a tool or test may add its own. No static initialisers, so nothing
// depends on what the linker keeps.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compress/pipeline/option_reader.h"
#include "compress/pipeline/pass.h"

namespace rwkvlite {

// Builds a validated pass from its [[pass]] table (the reader has consumed "type"; the
// factory reads the rest and must throw UsageError via the reader for anything invalid).
using PassFactory = std::function<std::unique_ptr<Pass>(OptionReader&)>;

class PassRegistry {
 public:
  // Error (internal) when the name is already taken or the factory is empty.
  void add(const std::string& type, PassFactory factory);
  const PassFactory* find(const std::string& type) const;  // null when unknown
  std::vector<std::string> types() const;                  // sorted

 private:
  std::map<std::string, PassFactory> factories_;
};

}  // namespace rwkvlite
