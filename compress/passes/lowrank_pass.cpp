#include "compress/passes/lowrank_pass.h"

#include <Eigen/Core>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/format/layout.h"

namespace rwkvlite {

namespace {

constexpr int kMaxRankOption = 1 << 20;

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::MatrixXd matrix_of(const Tensor& t) {
  return Eigen::Map<const RowMajorF>(t.data.data(), t.dim(0), t.dim(1)).cast<double>();
}

Tensor tensor_of(const Eigen::MatrixXf& m) {
  const RowMajorF rm = m;
  return Tensor({m.rows(), m.cols()}, std::vector<float>(rm.data(), rm.data() + rm.size()));
}

std::string base_of(const std::string& weight_name) {
  return layout::matrix_base(weight_name);
}


std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

int64_t dense_params(const Tensor& t) { return t.dim(0) * t.dim(1); }

// Total parameters the budget allows: a fraction of the targets' dense parameters.
int64_t budget_params(const CompressedModel& model, const std::vector<std::string>& names, double fraction) {
  int64_t dense = 0;
  for (const auto& n : names) dense += dense_params(model.at(n).values);
  return static_cast<int64_t>(std::floor(fraction * double(dense)));
}

// Runs fn(i) for i in [0, n) on up to `threads` threads. Each i is independent, so the results
// do not depend on which thread ran it.
template <typename Fn>
void parallel_for(size_t n, int threads, Fn fn) {
  const size_t workers = std::min<size_t>(n, static_cast<size_t>(std::max(1, threads)));
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) {
        try {
          fn(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          next = n;  // stop handing out work
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// Eigen only threads its products under OpenMP; pin it to one thread for the duration so
// that results cannot depend on the thread count (builds here have no OpenMP at all).
struct SingleThreadedEigen {
#ifdef _OPENMP
  int saved = Eigen::nbThreads();
  SingleThreadedEigen() { Eigen::setNbThreads(1); }
  ~SingleThreadedEigen() { Eigen::setNbThreads(saved); }
#endif
};

// What is kept about one targeted matrix between the stages of run(). W and the whitening
// factor are not kept: they are rebuilt from the model where needed, so memory holds only
// `threads` dense matrices at a time (plus every matrix's small factors), not all of them.
struct Job {
  std::string name;
  int64_t rows = 0, cols = 0;
  const Eigen::MatrixXd* C = nullptr;  // undamped calibration second moment, when available
  RankChoice choice;
  // results
  LowRankFactors factors;
  LowRankErrors errors;
  std::string whitening = "none";
  int clamped = 0;
  std::string note;
  double seconds = 0;
};

// A job's dense inputs: W in double and, in activation-aware mode, its whitening.
struct Inputs {
  Eigen::MatrixXd W;
  std::unique_ptr<Whitening> whitening;
  std::string note;
  // The matrix the SVD sees: W·L when whitened, W otherwise.
  Eigen::MatrixXd target() const { return whitening ? whitening->whiten(W) : W; }
};

}  // namespace

const char* rank_rule_key(RankRule r) {
  switch (r) {
    case RankRule::Fixed: return "rank";
    case RankRule::Divisor: return "divisor";
    case RankRule::Energy: return "energy";
    case RankRule::Budget: return "budget";
  }
  return "?";
}

std::vector<std::string> default_lowrank_targets() {
  return {"blocks.*.att.receptance.weight", "blocks.*.att.key.weight", "blocks.*.att.value.weight",
          "blocks.*.att.gate.weight"};
}

// ---- Options ------------------------------------------------------------------------------

LowRankOptions LowRankOptions::read(OptionReader& r) {
  LowRankOptions o;
  o.targets = r.get_patterns("targets", o.targets);
  o.ignore = r.get_patterns("ignore", o.ignore);

  std::vector<std::string> rule_keys;
  for (RankRule rule : {RankRule::Fixed, RankRule::Divisor, RankRule::Energy, RankRule::Budget}) {
    if (r.has(rank_rule_key(rule))) rule_keys.push_back(rank_rule_key(rule));
  }
  if (rule_keys.size() > 1) {
    r.fail(rule_keys[1], "'rank', 'divisor', 'energy' and 'budget' each choose the rank rule of " + r.where() +
                             "; give at most one (found " + join(rule_keys) + ")");
  }
  const std::string rule = rule_keys.empty() ? "divisor" : rule_keys[0];
  if (rule == "rank") {
    o.rule = RankRule::Fixed;
    o.rank = static_cast<int>(r.get_int("rank", 0, 1, kMaxRankOption));
  } else if (rule == "divisor") {
    o.rule = RankRule::Divisor;
    o.divisor = static_cast<int>(r.get_int("divisor", o.divisor, 1, kMaxRankOption));
  } else if (rule == "energy") {
    o.rule = RankRule::Energy;
    o.energy = r.get_double("energy", 1.0, 0.0, 1.0);
    if (!(o.energy > 0)) r.fail("energy", "'energy' in " + r.where() + " must be in (0, 1], got 0");
  } else {
    o.rule = RankRule::Budget;
    o.budget = r.get_double("budget", 1.0, 0.0, 1.0);
    if (!(o.budget > 0)) r.fail("budget", "'budget' in " + r.where() + " must be in (0, 1], got 0");
  }
  o.activation_aware = r.get<bool>("activation_aware", o.activation_aware);
  o.damping = r.get_double("damping", o.damping, 0.0, 1.0);
  const std::string svd = r.get_choice("svd", svd_method_name(o.svd), {"auto", "exact", "partial"});
  svd_method_from_name(svd, o.svd);
  return o;
}

void LowRankOptions::check() const {
  (void)TensorSelector(targets, ignore);  // throws on a malformed pattern
  if (targets.empty()) throw UsageError("lowrank: 'targets' is empty");
  switch (rule) {
    case RankRule::Fixed:
      if (rank < 1) throw UsageError("lowrank: 'rank' must be >= 1");
      break;
    case RankRule::Divisor:
      if (divisor < 1) throw UsageError("lowrank: 'divisor' must be >= 1");
      break;
    case RankRule::Energy:
      if (!(energy > 0 && energy <= 1)) throw UsageError("lowrank: 'energy' must be in (0, 1]");
      break;
    case RankRule::Budget:
      if (!(budget > 0 && budget <= 1)) throw UsageError("lowrank: 'budget' must be in (0, 1]");
      break;
  }
  if (!(damping >= 0 && damping <= 1)) throw UsageError("lowrank: 'damping' must be in [0, 1]");
  if (svd != SvdMethod::Auto && svd != SvdMethod::Exact && svd != SvdMethod::Partial) {
    throw UsageError("lowrank: unknown svd method");
  }
}

nlohmann::ordered_json LowRankOptions::to_json() const {
  nlohmann::ordered_json j;
  j["targets"] = targets;
  j["ignore"] = ignore;
  switch (rule) {
    case RankRule::Fixed: j["rank"] = rank; break;
    case RankRule::Divisor: j["divisor"] = divisor; break;
    case RankRule::Energy: j["energy"] = energy; break;
    case RankRule::Budget: j["budget"] = budget; break;
  }
  j["activation_aware"] = activation_aware;
  j["damping"] = damping;
  j["svd"] = svd_method_name(svd);
  return j;
}

// ---- Pass ---------------------------------------------------------------------------------

LowRankPass::LowRankPass(LowRankOptions options) : options_(std::move(options)) {
  options_.check();
  selector_ = TensorSelector(options_.targets, options_.ignore);
}

std::vector<std::string> LowRankPass::selected(const CompressedModel& model) const {
  return selector_.select(model.names());
}

void LowRankPass::validate(const CompressedModel& model) const {
  const std::vector<std::string> names = selected(model);
  if (names.empty()) {
    throw UsageError("lowrank: no tensor of this model matches targets [" + join(selector_.target_texts()) +
                     "]" + (options_.ignore.empty() ? "" : " minus ignore [" + join(options_.ignore) + "]"));
  }
  for (const auto& n : names) {
    const Tensor& t = model.at(n).values;
    if (!layout::is_matrix_weight(n)) {
      throw UsageError("lowrank: target '" + n + "' is not a '<base>.weight' matrix; lowrank factors only those");
    }
    if (t.rank() != 2) {
      throw UsageError("lowrank: target '" + n + "' has shape " + shape_to_string(t.shape) +
                       "; lowrank needs a 2-D matrix");
    }
  }
  if (options_.rule == RankRule::Budget) {
    std::vector<BudgetItem> items;
    int64_t minimum = 0;
    for (const auto& n : names) {
      const Tensor& t = model.at(n).values;
      minimum += max_useful_rank(t.dim(0), t.dim(1)) == 0 ? t.dim(0) * t.dim(1) : t.dim(0) + t.dim(1);
    }
    const int64_t budget = budget_params(model, names, options_.budget);
    if (minimum > budget) {
      throw UsageError("lowrank: budget " + std::to_string(options_.budget) + " allows " + std::to_string(budget) +
                       " parameters but rank 1 on each of the " + std::to_string(names.size()) +
                       " targets needs " + std::to_string(minimum));
    }
  }
}

int64_t LowRankPass::planned_bytes_delta(const CompressedModel& model) const {
  const std::vector<std::string> names = selected(model);
  int64_t delta = 0;
  switch (options_.rule) {
    case RankRule::Fixed:
    case RankRule::Divisor:
      for (const auto& n : names) {
        const Tensor& t = model.at(n).values;
        if (t.rank() != 2) continue;
        const int r = options_.rule == RankRule::Fixed ? options_.rank
                                                       : rank_for_divisor(t.dim(0), t.dim(1), options_.divisor);
        if (r <= max_useful_rank(t.dim(0), t.dim(1))) delta += 4 * (int64_t(r) * (t.dim(0) + t.dim(1)) - dense_params(t));
      }
      return delta;
    case RankRule::Budget: {
      int64_t dense = 0;
      for (const auto& n : names) dense += dense_params(model.at(n).values);
      return 4 * (budget_params(model, names, options_.budget) - dense);
    }
    case RankRule::Energy:
      return 0;
  }
  return 0;
}

std::vector<PassReportRow> LowRankPass::run(PassContext& ctx) {
  validate(ctx.model);
  [[maybe_unused]] SingleThreadedEigen single_threaded;
  CompressedModel& model = ctx.model;
  const std::vector<std::string> names = selected(model);

  // 1. Shapes and calibration statistics of each target.
  std::vector<Job> jobs(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    Job& job = jobs[i];
    job.name = names[i];
    const Tensor& t = model.at(names[i]).values;
    job.rows = t.dim(0);
    job.cols = t.dim(1);
    if (ctx.calibration != nullptr) {
      auto it = ctx.calibration->input_second_moment.find(names[i]);
      if (it != ctx.calibration->input_second_moment.end()) {
        if (it->second.rows() != job.cols || it->second.cols() != job.cols) {
          throw Error("calibration second moment of '" + names[i] + "' is " + std::to_string(it->second.rows()) +
                          "x" + std::to_string(it->second.cols()) + ", expected " + std::to_string(job.cols) +
                          " square",
                      kExitInternal);
        }
        job.C = &it->second;
      }
    }
    if (options_.activation_aware && job.C == nullptr) {
      throw Error("lowrank: activation_aware needs the calibration second moment of '" + names[i] +
                      "', which the pipeline did not provide",
                  kExitInternal);
    }
  }
  // Reads only the model (nothing writes it before stage 4), so it is safe on any thread.
  auto inputs_of = [&](const Job& job) {
    Inputs in;
    in.W = matrix_of(std::as_const(model).at(job.name).values);
    if (options_.activation_aware) {
      if (job.C->trace() > 0) {
        in.whitening = std::make_unique<Whitening>(Whitening::from_second_moment(*job.C, options_.damping));
      } else {
        in.note = "input never active in calibration: plain SVD";
      }
    }
    return in;
  };

  // 2. Ranks.
  switch (options_.rule) {
    case RankRule::Fixed:
    case RankRule::Divisor:
      for (Job& job : jobs) {
        job.choice.rank = options_.rule == RankRule::Fixed ? options_.rank
                                                           : rank_for_divisor(job.rows, job.cols, options_.divisor);
        job.choice.keep_dense = job.choice.rank > max_useful_rank(job.rows, job.cols);
      }
      break;
    case RankRule::Energy:
      parallel_for(jobs.size(), ctx.threads, [&](size_t i) {
        Job& job = jobs[i];
        job.choice.rank = rank_for_energy(singular_values(inputs_of(job).target()), options_.energy);
        job.choice.keep_dense = job.choice.rank > max_useful_rank(job.rows, job.cols);
      });
      break;
    case RankRule::Budget: {
      // Sensitivity per component, as a fraction of the matrix's own error scale so that
      // matrices of different norms compete fairly: with whitening the output energy of W·L;
      // with calibration but no whitening the output error each plain component removes
      // (s_i² v_iᵀ C v_i / tr(W C Wᵀ)); otherwise the weight energy s_i² / ||W||².
      std::vector<BudgetItem> items(jobs.size());
      parallel_for(jobs.size(), ctx.threads, [&](size_t i) {
        const Job& job = jobs[i];
        const Inputs in = inputs_of(job);
        BudgetItem& item = items[i];
        item.rows = job.rows;
        item.cols = job.cols;
        const double reference = job.C ? (in.W * *job.C).cwiseProduct(in.W).sum() : 0.0;
        if (!in.whitening && reference > 0) {
          Eigen::BDCSVD<Eigen::MatrixXd> svd(in.W, Eigen::ComputeThinV);
          const Eigen::VectorXd s = svd.singularValues();
          const Eigen::MatrixXd& V = svd.matrixV();
          item.gains.resize(s.size());
          for (Eigen::Index k = 0; k < s.size(); ++k) {
            item.gains[k] = s[k] * s[k] * V.col(k).dot(*job.C * V.col(k)) / reference;
          }
        } else {
          const Eigen::VectorXd s = singular_values(in.target());
          const double total = s.squaredNorm();
          item.gains = total > 0 ? Eigen::VectorXd(s.array().square() / total) : Eigen::VectorXd::Zero(s.size());
        }
      });
      const std::vector<RankChoice> choices = allocate_budget(items, budget_params(model, names, options_.budget));
      for (size_t i = 0; i < jobs.size(); ++i) jobs[i].choice = choices[i];
      break;
    }
  }

  // 3. Factors and errors.
  parallel_for(jobs.size(), ctx.threads, [&](size_t i) {
    Job& job = jobs[i];
    const auto start = std::chrono::steady_clock::now();
    if (!job.choice.keep_dense) {
      const Inputs in = inputs_of(job);
      job.note = in.note;
      if (in.whitening) {
        job.whitening = in.whitening->kind();
        job.clamped = in.whitening->clamped_eigenvalues();
      }
      job.factors = factorize(in.W, job.choice.rank, options_.svd, in.whitening.get());
      job.errors = measure_errors(in.W, job.factors, job.C);
    }
    job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });

  // 4. Apply and report in model order.
  std::vector<PassReportRow> rows;
  for (Job& job : jobs) {
    const int64_t out = job.rows, in = job.cols;
    PassReportRow row;
    row.tensor = job.name;
    row.bytes_before = 4 * out * in;
    row.seconds = job.seconds;
    std::string note = job.note;
    auto add_note = [&](const std::string& n) {
      if (!n.empty()) note += (note.empty() ? "" : "; ") + n;
    };
    if (job.choice.keep_dense) {
      row.action = "keep dense";
      row.bytes_after = row.bytes_before;
      if (max_useful_rank(out, in) == 0) {
        add_note("no rank saves parameters at this shape");
      } else if (options_.rule == RankRule::Budget) {
        add_note("the budget keeps this matrix dense (its remaining error was worth the parameters)");
      } else {
        add_note("rank " + std::to_string(job.choice.rank) + " would not save parameters (" +
                 std::to_string(int64_t(job.choice.rank) * (out + in)) + " >= " + std::to_string(out * in) + ")");
      }
      row.extra["rank"] = nullptr;
      row.extra["weight_error"] = 0.0;
      row.extra["output_error"] = job.C ? nlohmann::ordered_json(0.0) : nlohmann::ordered_json(nullptr);
      row.extra["svd"] = nullptr;
    } else {
      const int r = job.choice.rank;
      row.action = "lowrank r=" + std::to_string(r);
      row.bytes_after = 4 * int64_t(r) * (out + in);
      row.error = job.errors.weight;
      add_note(job.factors.note);
      row.extra["rank"] = r;
      row.extra["weight_error"] = job.errors.weight;
      row.extra["output_error"] =
          job.errors.output ? nlohmann::ordered_json(*job.errors.output) : nlohmann::ordered_json(nullptr);
      row.extra["svd"] = svd_method_name(job.factors.method_used);

      const std::string base = base_of(job.name);
      StoredTensor a;
      a.name = layout::lowrank_a(base);
      a.values = tensor_of(job.factors.a);
      StoredTensor b;
      b.name = layout::lowrank_b(base);
      b.values = tensor_of(job.factors.b);
      model.put(std::move(a), job.name);
      model.put(std::move(b), layout::lowrank_a(base));
      model.remove(job.name);
    }
    row.extra["whitening"] = job.whitening;
    if (job.clamped > 0) add_note(std::to_string(job.clamped) + " eigenvalues of C clamped");
    row.extra["note"] = note;
    if (ctx.on_row) ctx.on_row(row);
    rows.push_back(std::move(row));
    job.factors = LowRankFactors{};  // now owned by the model
  }
  return rows;
}

}  // namespace rwkvlite
