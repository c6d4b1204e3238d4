#include "runtime/engine/head.h"

#include "runtime/core/error.h"

namespace rwkvlite {

ProjectionHead::ProjectionHead(std::unique_ptr<Projection> weight) : weight_(std::move(weight)) {
  if (!weight_) throw UsageError("ProjectionHead: a weight projection is required");
}

}  // namespace rwkvlite
