#include "compress/passes/lowrank_pass.h"

#include <Eigen/Core>

#include <chrono>
#include <cmath>
#include <utility>

#include "compress/pipeline/ordered_rows.h"
#include "runtime/core/error.h"
#include "runtime/engine/thread_pool.h"
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

namespace {

// Replaces `name` (<base>.weight) by <base>.lr_a right after it and <base>.lr_b after that.
// The factors hold values in a run, only shapes in a plan.
void replace_by_factors(CompressedModel& model, const std::string& name, Tensor lr_a, Tensor lr_b) {
  const std::string base = base_of(name);
  StoredTensor a;
  a.name = layout::lowrank_a(base);
  a.values = std::move(lr_a);
  StoredTensor b;
  b.name = layout::lowrank_b(base);
  b.values = std::move(lr_b);
  model.put(std::move(a), name);
  model.put(std::move(b), layout::lowrank_a(base));
  model.remove(name);
}

}  // namespace

void LowRankPass::plan(CompressPlan& plan) const {
  const std::vector<std::string> names = selected(plan.model);
  const bool known = options_.rule == RankRule::Fixed || options_.rule == RankRule::Divisor;
  if (!known) {
    // The ranks come from the singular values, known only after the SVDs: the plan factors
    // every target at its largest useful rank so that later passes see the factor names.
    plan.unknowns.push_back(std::string("lowrank: the ") + rank_rule_key(options_.rule) +
                            " rule chooses ranks from singular values, known only after the SVDs");
  }
  for (const auto& n : names) {
    const Tensor& t = plan.model.at(n).values;
    const int64_t out = t.dim(0), in = t.dim(1);
    const int r = !known                              ? max_useful_rank(out, in)
                  : options_.rule == RankRule::Fixed ? options_.rank
                                                     : rank_for_divisor(out, in, options_.divisor);
    if (r < 1 || r > max_useful_rank(out, in)) continue;  // kept dense
    const auto shape = &CompressedModel::shape_only;
    replace_by_factors(plan.model, n, shape({r, in}), shape({out, r}));
  }
}

namespace {

// Stage 1: shapes and calibration statistics of each target.
std::vector<Job> make_jobs(const CompressedModel& model, const std::vector<std::string>& names,
                           const CalibrationData* calibration, bool activation_aware) {
  std::vector<Job> jobs(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    Job& job = jobs[i];
    job.name = names[i];
    const Tensor& t = model.at(names[i]).values;
    job.rows = t.dim(0);
    job.cols = t.dim(1);
    if (calibration != nullptr) {
      auto it = calibration->input_second_moment.find(names[i]);
      if (it != calibration->input_second_moment.end()) {
        if (it->second.rows() != job.cols || it->second.cols() != job.cols) {
          throw Error("calibration second moment of '" + names[i] + "' is " + std::to_string(it->second.rows()) +
                          "x" + std::to_string(it->second.cols()) + ", expected " + std::to_string(job.cols) +
                          " square",
                      kExitInternal);
        }
        job.C = &it->second;
      }
    }
    if (activation_aware && job.C == nullptr) {
      throw Error("lowrank: activation_aware needs the calibration second moment of '" + names[i] +
                      "', which the pipeline did not provide",
                  kExitInternal);
    }
  }
  return jobs;
}

// A matrix's dense inputs, rebuilt from the model where needed. Reads only the model (nothing
// writes it before the apply stage), so it is safe on any thread.
Inputs inputs_of(const CompressedModel& model, const Job& job, const LowRankOptions& options) {
  Inputs in;
  in.W = matrix_of(model.at(job.name).values);
  if (options.activation_aware) {
    if (job.C->trace() > 0) {
      in.whitening = std::make_unique<Whitening>(Whitening::from_second_moment(*job.C, options.damping));
    } else {
      in.note = "input never active in calibration: plain SVD";
    }
  }
  return in;
}

// Runs fn(i) for every job index on the pool; each job is independent, so results do not
// depend on which thread ran it.
template <typename Fn>
void for_each_job(ThreadPool& pool, size_t n, Fn fn) {
  pool.parallel_for(0, static_cast<int64_t>(n), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) fn(static_cast<size_t>(i));
  });
}

// Budget sensitivity of one matrix per component, as a fraction of the matrix's own error
// scale so that matrices of different norms compete fairly: with whitening the output energy
// of W·L; with calibration but no whitening the output error each plain component removes
// (s_i² v_iᵀ C v_i / tr(W C Wᵀ)); otherwise the weight energy s_i² / ||W||².
BudgetItem budget_item(const Job& job, const Inputs& in) {
  BudgetItem item;
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
  return item;
}

// The report row of a finished job (the model is changed later, by the apply stage).
PassReportRow report_row(const Job& job, const std::string& encoding, RankRule rule) {
  const int64_t out = job.rows, in = job.cols;
  PassReportRow row;
  row.tensor = job.name;
  row.shape = {out, in};
  row.encoding_before = encoding;
  row.encoding_after = job.choice.keep_dense ? encoding : "f32";
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
    } else if (rule == RankRule::Budget) {
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
    row.metric = "rel_err";
    row.value = job.errors.weight;
    add_note(job.factors.note);
    row.extra["rank"] = r;
    row.extra["weight_error"] = job.errors.weight;
    row.extra["output_error"] =
        job.errors.output ? nlohmann::ordered_json(*job.errors.output) : nlohmann::ordered_json(nullptr);
    row.extra["svd"] = svd_method_name(job.factors.method_used);
  }
  row.extra["whitening"] = job.whitening;
  if (job.clamped > 0) add_note(std::to_string(job.clamped) + " eigenvalues of C clamped");
  row.extra["note"] = note;
  return row;
}

}  // namespace

namespace {

// Stage 2: the rank of each job by the rule (the energy and budget rules need singular values).
void choose_ranks(std::vector<Job>& jobs, const CompressedModel& model, ThreadPool& pool,
                  const LowRankOptions& options) {
  switch (options.rule) {
    case RankRule::Fixed:
    case RankRule::Divisor:
      for (Job& job : jobs) {
        job.choice.rank = options.rule == RankRule::Fixed ? options.rank
                                                           : rank_for_divisor(job.rows, job.cols, options.divisor);
        job.choice.keep_dense = job.choice.rank > max_useful_rank(job.rows, job.cols);
      }
      break;
    case RankRule::Energy:
      for_each_job(pool, jobs.size(), [&](size_t i) {
        Job& job = jobs[i];
        job.choice.rank = rank_for_energy(singular_values(inputs_of(model, job, options).target()), options.energy);
        job.choice.keep_dense = job.choice.rank > max_useful_rank(job.rows, job.cols);
      });
      break;
    case RankRule::Budget: {
      std::vector<BudgetItem> items(jobs.size());
      for_each_job(pool, jobs.size(), [&](size_t i) { items[i] = budget_item(jobs[i], inputs_of(model, jobs[i], options)); });
      std::vector<std::string> names;
      for (const Job& job : jobs) names.push_back(job.name);
      const std::vector<RankChoice> choices = allocate_budget(items, budget_params(model, names, options.budget));
      for (size_t i = 0; i < jobs.size(); ++i) jobs[i].choice = choices[i];
      break;
    }
  }
}

// Stage 3: factors and errors of every job, several at a time; each job's report row is passed
// on as soon as it and the jobs before it are done.
std::vector<PassReportRow> factorize_all(std::vector<Job>& jobs, const CompressedModel& model, ThreadPool& pool,
                                         const LowRankOptions& options,
                                         const std::function<void(const PassReportRow&)>& on_row) {
  OrderedRows rows(jobs.size(), on_row);
  for_each_job(pool, jobs.size(), [&](size_t i) {
    Job& job = jobs[i];
    const auto start = std::chrono::steady_clock::now();
    if (!job.choice.keep_dense) {
      const Inputs in = inputs_of(model, job, options);
      job.note = in.note;
      if (in.whitening) {
        job.whitening = in.whitening->kind();
        job.clamped = in.whitening->clamped_eigenvalues();
      }
      job.factors = factorize(in.W, job.choice.rank, options.svd, in.whitening.get());
      job.errors = measure_errors(in.W, job.factors, job.C);
    }
    job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rows.finish(i, report_row(job, model.at(job.name).encoding, options.rule));
  });
  return rows.take();
}

// Stage 4: the factors replace the dense matrices, in model order.
void apply_factors(std::vector<Job>& jobs, CompressedModel& model) {
  for (Job& job : jobs) {
    if (!job.choice.keep_dense) {
      replace_by_factors(model, job.name, tensor_of(job.factors.a), tensor_of(job.factors.b));
    }
    job.factors = LowRankFactors{};  // now owned by the model
  }
}

}  // namespace

std::vector<PassReportRow> LowRankPass::run(PassContext& ctx) {
  validate(ctx.model);
  [[maybe_unused]] SingleThreadedEigen single_threaded;
  const std::vector<std::string> names = selected(ctx.model);
  if (ctx.on_start) ctx.on_start(static_cast<int64_t>(names.size()));
  ThreadPool pool(std::max(1, std::min<int>(ctx.threads, static_cast<int>(names.size()))), 1);
  std::vector<Job> jobs = make_jobs(ctx.model, names, ctx.calibration, options_.activation_aware);
  choose_ranks(jobs, ctx.model, pool, options_);
  std::vector<PassReportRow> rows = factorize_all(jobs, ctx.model, pool, options_, ctx.on_row);
  apply_factors(jobs, ctx.model);
  return rows;
}

}  // namespace rwkvlite
