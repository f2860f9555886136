// Lockstep integration of sample blocks on the matrix path. The steppers
// repeat the arithmetic of kernels/integrators.hpp row by row (same tableau,
// same controller, same order of operations), so only the velocities differ
// from the direct path, by rounding.
#include "kernels/cpu/gemm_flow.hpp"

#include <omp.h>

#include <algorithm>

#include "kernels/philox_normal.hpp"
#include "kernels/shifted_atoms.hpp"
#include "kernels/vec.hpp"

namespace fmg::gemm {

template <class T>
MatrixMixture<T>::MatrixMixture(const HostMixture<T>& mixture)
    : view(mixture.view()) {
  const int num_atoms = mixture.num_atoms();
  const int d = mixture.dim;
  const ShiftedAtoms<T> shifted = shift_atoms(mixture);
  center = shifted.center;
  atoms = Eigen::Map<const RowMatrix<T>>(shifted.atoms.data(), num_atoms, d);
  half_norms = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(
      shifted.half_norms.data(), num_atoms);
  log_weights = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>(
      mixture.log_weights.data(), num_atoms);
  for (int k = 0; k < num_atoms; ++k) {
    if (!(mixture.log_weights[k] > -math::infinity<T>())) {
      zero_weight_atoms.push_back(k);
    }
  }
}

template <class T>
BatchVelocity<T>::BatchVelocity(const MatrixMixture<T>& mixture,
                                ScheduleKind schedule, std::size_t capacity)
    : mixture_(mixture),
      schedule_(schedule),
      centered_(static_cast<Eigen::Index>(capacity), mixture.atoms.cols()),
      logits_(static_cast<Eigen::Index>(capacity), mixture.atoms.rows()),
      means_(static_cast<Eigen::Index>(capacity), mixture.atoms.cols()),
      schedules_(capacity) {}

template <class T>
void BatchVelocity<T>::evaluate(const RowMatrix<T>& x, const T* t,
                                std::size_t rows, RowMatrix<T>& v) {
  if (rows == 0) return;
  const auto n = static_cast<Eigen::Index>(rows);
  const Eigen::Index d = x.cols();
  const T* center = mixture_.center.data();

  for (Eigen::Index i = 0; i < n; ++i) {
    const ScheduleValues<T> s = evaluate_schedule(schedule_, t[i]);
    schedules_[i] = s;
    const T* xi = x.row(i).data();
    T* ci = centered_.row(i).data();
    for (Eigen::Index j = 0; j < d; ++j) ci[j] = xi[j] - s.b * center[j];
  }

  logits_.topRows(n).noalias() =
      centered_.topRows(n) * mixture_.atoms.transpose();

  // Row softmax of l_ik = log w_k + (b <x', mu'_k> - b^2 |mu'_k|^2 / 2) / a^2,
  // max-subtracted so that the largest term is exp(0) = 1.
  std::vector<Eigen::Index>& fallback = fallback_rows_;
  fallback.clear();
  for (Eigen::Index i = 0; i < n; ++i) {
    const ScheduleValues<T>& s = schedules_[i];
    const T inv_a = T(1) / s.a;
    const T scale = s.b * inv_a * inv_a;
    auto row = logits_.row(i).array();
    row = (row - s.b * mixture_.half_norms) * scale + mixture_.log_weights;
    const T top = row.maxCoeff();
    if (!math::isfinite(top)) {
      fallback.push_back(i);
      row.setZero();
      continue;
    }
    row = (row - top).exp();
    // Eigen's vectorised exp clamps its argument, so exp(-inf) is not
    // exactly 0; atoms of zero weight must get none.
    for (const int k : mixture_.zero_weight_atoms) row(k) = T(0);
    const T sum = row.sum();
    if (!math::isfinite(sum)) {
      fallback.push_back(i);
      row.setZero();
      continue;
    }
    row *= T(1) / sum;
  }

  means_.topRows(n).noalias() = logits_.topRows(n) * mixture_.atoms;

  // v = a' (x - b m) / a + b' m with x - b m = (x - b c) - b (m - c).
  for (Eigen::Index i = 0; i < n; ++i) {
    const ScheduleValues<T>& s = schedules_[i];
    const T c_noise = s.da / s.a;
    const T* ci = centered_.row(i).data();
    const T* mi = means_.row(i).data();
    T* vi = v.row(i).data();
    for (Eigen::Index j = 0; j < d; ++j) {
      vi[j] = c_noise * (ci[j] - s.b * mi[j]) + s.db * (mi[j] + center[j]);
    }
  }
  for (const Eigen::Index i : fallback) {
    const int dim = static_cast<int>(d);
    const StridedVec<T> xi{const_cast<T*>(x.row(i).data()), dim, 1};
    StridedVec<T> vi{v.row(i).data(), dim, 1};
    velocity(mixture_.view, schedule_, t[i], xi, vi);
  }
}

namespace {

/// Integration state of one sample of a block.
template <class T>
struct RowState {
  std::size_t sample = 0;  ///< Index in the chunk.
  T t = T(0);
  T h = T(0);      ///< Dormand-Prince step; the first-step guess h0
                   ///< while the first step is chosen.
  T t_new = T(0);  ///< End of the step being attempted.
  SampleCounters counters;
  bool previous_rejected = false;
  int non_finite_steps = 0;
};

/// One thread's lockstep integrator. The unfinished samples of the block
/// occupy rows [0, rows_) of the state matrices. A finished sample writes
/// its outputs and the last unfinished row moves into its place, so every
/// matrix product runs on contiguous rows.
template <class T>
class LockstepBlock {
 public:
  LockstepBlock(const MatrixMixture<T>& mixture, const FlowProblem<T>& problem,
                const FlowChunk<T>& chunk, FlowTally& tally)
      : mixture_(mixture),
        problem_(problem),
        chunk_(chunk),
        tally_(tally),
        velocity_(mixture, problem.schedule, block_rows),
        d_(mixture.atoms.cols()),
        state_(block_rows),
        stage_t_(block_rows) {
    const auto rows = static_cast<Eigen::Index>(block_rows);
    for (RowMatrix<T>* m :
         {&x_, &k1_, &k2_, &k3_, &k4_, &k5_, &k6_, &k7_, &stage_, &next_}) {
      m->resize(rows, d_);
    }
  }

  /// Integrates samples [begin, end) of the chunk, at most block_rows.
  void run(std::size_t begin, std::size_t end) {
    load(begin, end);
    if (problem_.method == Method::dopri5) {
      run_dopri5();
    } else {
      run_fixed();
    }
  }

 private:
  StridedVec<T> row_vec(RowMatrix<T>& m, std::size_t i) {
    return {m.row(static_cast<Eigen::Index>(i)).data(), static_cast<int>(d_),
            1};
  }

  void load(std::size_t begin, std::size_t end) {
    rows_ = end - begin;
    const std::size_t d = static_cast<std::size_t>(d_);
    for (std::size_t i = 0; i < rows_; ++i) {
      const std::size_t sample = begin + i;
      state_[i] = RowState<T>{};
      state_[i].sample = sample;
      StridedVec<T> x = row_vec(x_, i);
      if (chunk_.starts != nullptr) {
        std::copy_n(chunk_.starts + sample * d, d, x.data);
      } else {
        philox_base_sample(
            problem_.seed,
            chunk_.first_index + static_cast<std::uint64_t>(sample), x);
      }
      if (chunk_.base_samples != nullptr) {
        std::copy_n(x.data, d, chunk_.base_samples + sample * d);
      }
    }
  }

  /// Writes row i's outputs with `status`, counts it, and moves the last
  /// unfinished row (its state, x and k1) into row i. Callers walk the rows
  /// from the last to the first, so the moved row was already handled.
  void finish(std::size_t i, SampleStatus status) {
    RowState<T>& row = state_[i];
    row.counters.status = status;
    const StridedVec<T> x = row_vec(x_, i);
    const int label = endpoint_label(mixture_.view, endpoint_scale(problem_), row.counters, x);
    const std::size_t d = static_cast<std::size_t>(d_);
    if (chunk_.endpoints != nullptr) {
      std::copy_n(x.data, d, chunk_.endpoints + row.sample * d);
    }
    if (chunk_.labels != nullptr) chunk_.labels[row.sample] = label;
    tally_.add(row.counters, label);

    const std::size_t last = rows_ - 1;
    if (i != last) {
      const auto to = static_cast<Eigen::Index>(i);
      const auto from = static_cast<Eigen::Index>(last);
      x_.row(to) = x_.row(from);
      k1_.row(to) = k1_.row(from);
      state_[i] = state_[last];
    }
    rows_ -= 1;
  }

  void evaluate(const RowMatrix<T>& x, RowMatrix<T>& v) {
    velocity_.evaluate(x, stage_t_.data(), rows_, v);
  }

  bool row_finite(const RowMatrix<T>& m, std::size_t i) const {
    const T* p = m.row(static_cast<Eigen::Index>(i)).data();
    bool finite = true;
    for (Eigen::Index j = 0; j < d_; ++j)
      finite = finite && math::isfinite(p[j]);
    return finite;
  }

  void run_fixed();
  void run_dopri5();
  void choose_first_steps();
  void attempt_dopri5_steps();

  const MatrixMixture<T>& mixture_;
  const FlowProblem<T>& problem_;
  const FlowChunk<T>& chunk_;
  FlowTally& tally_;
  BatchVelocity<T> velocity_;
  Eigen::Index d_;
  RowMatrix<T> x_, k1_, k2_, k3_, k4_, k5_, k6_, k7_, stage_, next_;
  std::vector<RowState<T>> state_;
  std::vector<T> stage_t_;  ///< Time of each row's next evaluation.
  std::size_t rows_ = 0;
};

/// Euler, Heun or RK4 as integrate_fixed: every row shares the time grid.
template <class T>
void LockstepBlock<T>::run_fixed() {
  const Method method = problem_.method;
  const int steps = problem_.steps;
  const T t_end = problem_.t_end;
  for (int step = 0; step < steps && rows_ > 0; ++step) {
    const T t0 = t_end * T(step) / T(steps);
    const T t1 = step + 1 == steps ? t_end : t_end * T(step + 1) / T(steps);
    const T h = t1 - t0;
    const auto n = static_cast<Eigen::Index>(rows_);
    std::fill_n(stage_t_.begin(), rows_, t0);
    evaluate(x_, k1_);
    if (method == Method::euler) {
      for (std::size_t i = 0; i < rows_; ++i)
        state_[i].counters.evaluations += 1;
      x_.topRows(n) += h * k1_.topRows(n);
    } else if (method == Method::heun) {
      for (std::size_t i = 0; i < rows_; ++i)
        state_[i].counters.evaluations += 2;
      stage_.topRows(n) = x_.topRows(n) + h * k1_.topRows(n);
      std::fill_n(stage_t_.begin(), rows_, t1);
      evaluate(stage_, k2_);
      const T half_h = T(0.5) * h;
      x_.topRows(n) += half_h * (k1_.topRows(n) + k2_.topRows(n));
    } else {
      for (std::size_t i = 0; i < rows_; ++i)
        state_[i].counters.evaluations += 4;
      const T half_h = T(0.5) * h;
      const T t_mid = math::min(t0 + half_h, t1);
      stage_.topRows(n) = x_.topRows(n) + half_h * k1_.topRows(n);
      std::fill_n(stage_t_.begin(), rows_, t_mid);
      evaluate(stage_, k2_);
      stage_.topRows(n) = x_.topRows(n) + half_h * k2_.topRows(n);
      evaluate(stage_, k3_);
      stage_.topRows(n) = x_.topRows(n) + h * k3_.topRows(n);
      std::fill_n(stage_t_.begin(), rows_, t1);
      evaluate(stage_, k4_);
      const T sixth_h = h / T(6);
      x_.topRows(n) += sixth_h * (k1_.topRows(n) + T(2) * k2_.topRows(n) +
                                  T(2) * k3_.topRows(n) + k4_.topRows(n));
    }
    for (std::size_t i = rows_; i-- > 0;) {
      if (!row_finite(x_, i)) {
        finish(i, SampleStatus::non_finite_state);
      } else {
        state_[i].counters.accepted += 1;
      }
    }
  }
  for (std::size_t i = rows_; i-- > 0;) finish(i, SampleStatus::ok);
}

/// Dormand-Prince as integrate_dopri5, each row with its own time, step and
/// controller state.
template <class T>
void LockstepBlock<T>::run_dopri5() {
  std::fill_n(stage_t_.begin(), rows_, T(0));
  evaluate(x_, k1_);
  for (std::size_t i = rows_; i-- > 0;) {
    state_[i].counters.evaluations += 1;
    if (!row_finite(k1_, i)) finish(i, SampleStatus::non_finite_state);
  }

  if (problem_.control.initial_step > T(0)) {
    for (std::size_t i = 0; i < rows_; ++i)
      state_[i].h = problem_.control.initial_step;
  } else {
    choose_first_steps();
  }

  while (rows_ > 0) {
    for (std::size_t i = rows_; i-- > 0;) {
      const SampleCounters& c = state_[i].counters;
      if (c.accepted + c.rejected >= problem_.control.max_steps) {
        finish(i, SampleStatus::max_steps_reached);
      }
    }
    if (rows_ == 0) break;
    attempt_dopri5_steps();
  }
}

/// dopri5_first_step for every row, with its one extra velocity evaluation
/// batched over the rows.
template <class T>
void LockstepBlock<T>::choose_first_steps() {
  const StepControl<T>& control = problem_.control;
  std::vector<T> d1_values(rows_);
  for (std::size_t i = 0; i < rows_; ++i) {
    const StridedVec<T> x = row_vec(x_, i);
    const StridedVec<T> k1 = row_vec(k1_, i);
    StridedVec<T> stage = row_vec(stage_, i);
    const T h0 =
        dopri5_trial_step(x, k1, problem_.t_end, control, d1_values[i]);
    for (Eigen::Index j = 0; j < d_; ++j) stage[j] = x[j] + h0 * k1[j];
    state_[i].h = h0;
    stage_t_[i] = h0;
  }
  evaluate(stage_, k2_);
  for (std::size_t i = 0; i < rows_; ++i) {
    RowState<T>& row = state_[i];
    row.h = dopri5_first_step_from_trial(row_vec(x_, i), row_vec(k1_, i),
                                         row_vec(k2_, i), row.h, d1_values[i],
                                         control);
    row.counters.evaluations += 1;
  }
}

/// One attempted step of every row: the six stages and the final
/// evaluation, then each row's error test and step update.
template <class T>
void LockstepBlock<T>::attempt_dopri5_steps() {
  using Tab = Dopri5Tableau<T>;
  const StepControl<T>& control = problem_.control;
  const T t_end = problem_.t_end;

  // Stretch a step that would leave a sliver before t_end, and land the
  // last step exactly on t_end.
  for (std::size_t i = 0; i < rows_; ++i) {
    RowState<T>& row = state_[i];
    bool last = false;
    if (row.t + T(1.01) * row.h >= t_end) {
      row.h = t_end - row.t;
      last = true;
    }
    row.t_new = last ? t_end : row.t + row.h;
  }

  // Stage s: stage = x + h * sum_j a_sj k_j, evaluated at min(t + c_s h,
  // t_new), or at t_new itself for c_s = 1 (t + h can round past t_new on
  // the last step); `combine` writes one row's stage argument.
  auto stage = [&](T c, RowMatrix<T>& k_out, auto combine) {
    for (std::size_t i = 0; i < rows_; ++i) {
      const auto r = static_cast<Eigen::Index>(i);
      const RowState<T>& row = state_[i];
      combine(row.h, x_.row(r).data(), stage_.row(r).data(), r);
      stage_t_[i] =
          c == T(1) ? row.t_new : math::min(row.t + c * row.h, row.t_new);
    }
    evaluate(stage_, k_out);
  };
  const auto k = [](const RowMatrix<T>& m, Eigen::Index r) {
    return m.row(r).data();
  };
  const Eigen::Index d = d_;

  stage(dopri5::c2<T>(), k2_, [&](T h, const T* x, T* s, Eigen::Index r) {
    const T* k1 = k(k1_, r);
    for (Eigen::Index j = 0; j < d; ++j) s[j] = x[j] + h * (Tab::a21 * k1[j]);
  });
  stage(dopri5::c3<T>(), k3_, [&](T h, const T* x, T* s, Eigen::Index r) {
    const T *k1 = k(k1_, r), *k2 = k(k2_, r);
    for (Eigen::Index j = 0; j < d; ++j) {
      s[j] = x[j] + h * (Tab::a31 * k1[j] + Tab::a32 * k2[j]);
    }
  });
  stage(dopri5::c4<T>(), k4_, [&](T h, const T* x, T* s, Eigen::Index r) {
    const T *k1 = k(k1_, r), *k2 = k(k2_, r), *k3 = k(k3_, r);
    for (Eigen::Index j = 0; j < d; ++j) {
      s[j] =
          x[j] + h * (Tab::a41 * k1[j] + Tab::a42 * k2[j] + Tab::a43 * k3[j]);
    }
  });
  stage(dopri5::c5<T>(), k5_, [&](T h, const T* x, T* s, Eigen::Index r) {
    const T *k1 = k(k1_, r), *k2 = k(k2_, r), *k3 = k(k3_, r), *k4 = k(k4_, r);
    for (Eigen::Index j = 0; j < d; ++j) {
      s[j] = x[j] + h * (Tab::a51 * k1[j] + Tab::a52 * k2[j] +
                         Tab::a53 * k3[j] + Tab::a54 * k4[j]);
    }
  });
  stage(T(1), k6_, [&](T h, const T* x, T* s, Eigen::Index r) {
    const T *k1 = k(k1_, r), *k2 = k(k2_, r), *k3 = k(k3_, r), *k4 = k(k4_, r),
            *k5 = k(k5_, r);
    for (Eigen::Index j = 0; j < d; ++j) {
      s[j] =
          x[j] + h * (Tab::a61 * k1[j] + Tab::a62 * k2[j] + Tab::a63 * k3[j] +
                      Tab::a64 * k4[j] + Tab::a65 * k5[j]);
    }
  });
  for (std::size_t i = 0; i < rows_; ++i) {
    const auto r = static_cast<Eigen::Index>(i);
    const T h = state_[i].h;
    const T *x = k(x_, r), *k1 = k(k1_, r), *k3 = k(k3_, r), *k4 = k(k4_, r),
            *k5 = k(k5_, r), *k6 = k(k6_, r);
    T* next = next_.row(r).data();
    for (Eigen::Index j = 0; j < d; ++j) {
      next[j] =
          x[j] + h * (Tab::b1 * k1[j] + Tab::b3 * k3[j] + Tab::b4 * k4[j] +
                      Tab::b5 * k5[j] + Tab::b6 * k6[j]);
    }
    stage_t_[i] = state_[i].t_new;
  }
  evaluate(next_, k7_);

  for (std::size_t i = rows_; i-- > 0;) {
    const auto r = static_cast<Eigen::Index>(i);
    RowState<T>& row = state_[i];
    row.counters.evaluations += 6;
    const T h = row.h;
    const T *x = k(x_, r), *next = k(next_, r), *k1 = k(k1_, r),
            *k3 = k(k3_, r), *k4 = k(k4_, r), *k5 = k(k5_, r), *k6 = k(k6_, r),
            *k7 = k(k7_, r);
    T err = T(0);
    for (Eigen::Index j = 0; j < d; ++j) {
      const T scaled = dopri5_scaled_error(h, k1[j], k3[j], k4[j], k5[j], k6[j], k7[j], x[j],
                                           next[j], control);
      err += scaled * scaled;
    }
    err = math::sqrt(err / T(d));

    if (!math::isfinite(err)) {
      row.counters.rejected += 1;
      if (++row.non_finite_steps >= 16) {
        finish(i, SampleStatus::non_finite_state);
        continue;
      }
      row.h *= control.min_factor;
      row.previous_rejected = true;
      continue;
    }

    if (err <= T(1)) {
      x_.row(r) = next_.row(r);
      k1_.row(r) = k7_.row(r);
      row.t = row.t_new;
      row.counters.accepted += 1;
      row.h *= dopri5_step_factor(err, true, row.previous_rejected, control);
      row.previous_rejected = false;
      if (!(row.t < t_end)) finish(i, SampleStatus::ok);
    } else {
      row.counters.rejected += 1;
      row.h *= dopri5_step_factor(err, false, row.previous_rejected, control);
      row.previous_rejected = true;
    }
  }
}

}  // namespace

template <class T>
void run_matrix_chunk(const MatrixMixture<T>& mixture,
                      const FlowProblem<T>& problem, const FlowChunk<T>& chunk,
                      int threads, FlowTally& tally) {
  if (chunk.count == 0) return;
  const auto blocks =
      static_cast<std::ptrdiff_t>((chunk.count + block_rows - 1) / block_rows);
  const int team =
      static_cast<int>(std::min<std::ptrdiff_t>(std::max(threads, 1), blocks));

#pragma omp parallel num_threads(team)
  {
    // Eigen parallelises a product itself unless the enclosing team has
    // more than one thread. A team of one would then start a nested team
    // whose spinning cost 30% of a one-thread run (perf, K = 1000, d = 4).
    // This call sets the thread count of this implicit task only.
    omp_set_num_threads(1);
    FlowTally local(mixture.view.num_atoms);
    LockstepBlock<T> block(mixture, problem, chunk, local);

#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t b = 0; b < blocks; ++b) {
      const std::size_t begin = static_cast<std::size_t>(b) * block_rows;
      block.run(begin, std::min(chunk.count, begin + block_rows));
    }

#pragma omp critical(fmg_cpu_flow_tally)
    tally.merge(local);
  }
}

template struct MatrixMixture<float>;
template struct MatrixMixture<double>;
template class BatchVelocity<float>;
template class BatchVelocity<double>;
template void run_matrix_chunk(const MatrixMixture<float>&,
                               const FlowProblem<float>&,
                               const FlowChunk<float>&, int, FlowTally&);
template void run_matrix_chunk(const MatrixMixture<double>&,
                               const FlowProblem<double>&,
                               const FlowChunk<double>&, int, FlowTally&);

}  // namespace fmg::gemm
