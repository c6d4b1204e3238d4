#include "compress/algo/torch_parts.h"

#include <mutex>

#include "converters/pth_file.h"

namespace rwkvlite {

void register_torch_parts() {
  static std::once_flag once;
  std::call_once(once, [] {
    set_predictor_trainer(&train_predictors_torch);
    set_cluster_head_trainer(&train_cluster_head_torch);
    enable_pth_support();
  });
}

}  // namespace rwkvlite
