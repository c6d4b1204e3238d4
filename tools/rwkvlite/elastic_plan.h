// rwkvlite plan ELASTIC.rwkvlite --memory-budget B [--stream] [--sequential]
//                                [--io-bandwidth MB/s] [--threads N] [--json FILE]:
// the plan the runtime would run an elastic file with, without running it. It loads the file
// exactly as rwkvlite-run does (the same planner, the same speed probe) and prints per layer
// the forms chosen, whether the layer is resident or streamed, its bytes and predicted cost,
// then the resident total, the predicted bits per byte and the predicted tokens/s.
#pragma once

#include <string>

#include "tools/common/model_args.h"

namespace rwkvlite::cli {

// 0; ResourceError (exit 5) when even streaming does not fit; UsageError when `path` is a
// compact file but not an elastic one.
int run_elastic_plan(const std::string& path, const tools::BudgetArgs& budget, int threads,
                     const std::string& json_path);

}  // namespace rwkvlite::cli
