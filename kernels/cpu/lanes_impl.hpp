// Implementation of the lane engine, included once per instruction set by
// lanes_<isa>.cpp with FMG_LANES_ISA naming the namespace of that copy.
#include <algorithm>
#include <cstdint>
#include <utility>

#include "kernels/cpu/lane_math.hpp"
#include "kernels/cpu/lanes.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

#ifndef FMG_LANES_ISA
#error "define FMG_LANES_ISA before including lanes_impl.hpp"
#endif

namespace fmg::lanes::FMG_LANES_ISA {
namespace {

/// Samples advanced in lockstep: four AVX-512 vectors, so each lane loop
/// holds four independent dependency chains that the processor overlaps. One
/// vector per loop left the velocity bound by the latency of its exponential
/// and divisions: 32 lanes took the built-in example from 1.66 to 1.13 us
/// per sample in double, and 64 from 0.62 to 0.36 us in float.
template <class T>
inline constexpr int lane_width = sizeof(T) == 8 ? 32 : 64;

/// Atoms whose log-space terms are computed before one rescaling of the
/// running log-sum-exp.
inline constexpr int atom_block = 8;

template <class T>
inline bool is_minus_infinity(T value) {
  return value == -math::infinity<T>();
}

/// a, b, a', b' at W lane times, from s = 1 - t as the scalar schedules.
template <class T, int W>
inline void schedule_lanes(ScheduleKind kind, const T* t, T* a, T* b, T* da,
                           T* db) {
  const T half_pi = math::pi<T>() / T(2);
  if (kind == ScheduleKind::linear) {
    for (int l = 0; l < W; ++l) {
      a[l] = T(1) - t[l];
      b[l] = t[l];
      da[l] = T(-1);
      db[l] = T(1);
    }
  } else if (kind == ScheduleKind::variance_preserving) {
    for (int l = 0; l < W; ++l) {
      a[l] = sin_quadrant(half_pi * (T(1) - t[l]));
      b[l] = sin_quadrant(half_pi * t[l]);
      da[l] = -half_pi * b[l];
      db[l] = half_pi * a[l];
    }
  } else {
    for (int l = 0; l < W; ++l) {
      const T sin_s = sin_quadrant(half_pi * (T(1) - t[l]));
      const T sin_t = sin_quadrant(half_pi * t[l]);
      const T sin_pi_t = T(2) * sin_s * sin_t;
      a[l] = sin_s * sin_s;
      b[l] = sin_t * sin_t;
      da[l] = -half_pi * sin_pi_t;
      db[l] = half_pi * sin_pi_t;
    }
  }
}

/// v = velocity(x, t) for W lanes; the same formula as fmg::velocity, with
/// the responsibilities' log-sum-exp taken over blocks of atoms. K > 0 fixes
/// the number of atoms at compile time (K <= atom_block), so the loops over
/// atoms unroll and their arrays stay in registers; K = 0 reads it from mix.
template <class T, int D, int W, int K>
inline void velocity_lanes(const MixtureView<T>& mix, ScheduleKind kind,
                           const T* t, const T (&x)[D][W], T (&v)[D][W]) {
  static_assert(K >= 0 && K <= atom_block, "K must fit one block");
  const int num_atoms = K > 0 ? K : mix.num_atoms;
  alignas(64) T a[W], b[W], da[W], db[W], inv_two_a2[W];
  schedule_lanes<T, W>(kind, t, a, b, da, db);
  for (int l = 0; l < W; ++l) inv_two_a2[l] = T(0.5) / (a[l] * a[l]);

  alignas(64) T running_max[W], sum[W];
  // [atom_block][W] arrays stored flat, entry kk * W + l.
  alignas(64) T terms[atom_block * W];
  for (int k0 = 0; k0 < num_atoms; k0 += atom_block) {
    const int block = K > 0 ? K : std::min(atom_block, num_atoms - k0);
    for (int kk = 0; kk < block; ++kk) {
      const T* mu = mix.atom(k0 + kk);
      const T log_w = mix.log_weights[k0 + kk];
      alignas(64) T dist2[W];
      for (int l = 0; l < W; ++l) dist2[l] = T(0);
      for (int j = 0; j < D; ++j) {
        const T mu_j = mu[j];
        for (int l = 0; l < W; ++l) {
          const T diff = x[j][l] - b[l] * mu_j;
          dist2[l] += diff * diff;
        }
      }
      for (int l = 0; l < W; ++l) terms[kk * W + l] = log_w - dist2[l] * inv_two_a2[l];
    }
    alignas(64) T block_max[W];
    for (int l = 0; l < W; ++l) block_max[l] = terms[l];
    for (int kk = 1; kk < block; ++kk) {
      for (int l = 0; l < W; ++l) block_max[l] = math::max(block_max[l], terms[kk * W + l]);
    }
    if (k0 == 0) {
      for (int l = 0; l < W; ++l) {
        running_max[l] = block_max[l];
        sum[l] = T(0);
      }
      for (int j = 0; j < D; ++j) {
        for (int l = 0; l < W; ++l) v[j][l] = T(0);
      }
    } else {
      alignas(64) T scale[W];
      for (int l = 0; l < W; ++l) {
        const T new_max = math::max(running_max[l], block_max[l]);
        const T value = exp(running_max[l] - new_max);
        scale[l] = is_minus_infinity(new_max) ? T(1) : value;
        sum[l] *= scale[l];
        running_max[l] = new_max;
      }
      for (int j = 0; j < D; ++j) {
        for (int l = 0; l < W; ++l) v[j][l] *= scale[l];
      }
    }
    // The exponentials of different atoms are independent, so the
    // processor overlaps their latencies across iterations of kk.
    alignas(64) T e[atom_block * W];
    for (int kk = 0; kk < block; ++kk) {
      for (int l = 0; l < W; ++l) {
        // Both sides are computed, so the loop has no branch to vectorise
        // around; -inf - -inf gives NaN, which the select then drops.
        const T value = exp(terms[kk * W + l] - running_max[l]);
        e[kk * W + l] = is_minus_infinity(running_max[l]) ? T(0) : value;
      }
    }
    for (int kk = 0; kk < block; ++kk) {
      const T* mu = mix.atom(k0 + kk);
      for (int l = 0; l < W; ++l) sum[l] += e[kk * W + l];
      for (int j = 0; j < D; ++j) {
        const T mu_j = mu[j];
        for (int l = 0; l < W; ++l) v[j][l] += e[kk * W + l] * mu_j;
      }
    }
  }

  bool any_empty = false;
  for (int l = 0; l < W; ++l) any_empty = any_empty || !(sum[l] > T(0));
  if (any_empty) {
    // Every term underflowed to -inf in some lane: fall back, as the scalar
    // kernel does, to the nearest atom of positive weight.
    for (int l = 0; l < W; ++l) {
      if (sum[l] > T(0)) continue;
      LocalVec<T, D> point{};
      for (int j = 0; j < D; ++j) point[j] = x[j][l];
      int nearest = 0;
      T nearest_dist = math::infinity<T>();
      for (int k = 0; k < mix.num_atoms; ++k) {
        if (is_minus_infinity(mix.log_weights[k])) continue;
        const T dist2 = squared_distance(point, b[l], mix.atom(k));
        if (dist2 < nearest_dist) {
          nearest_dist = dist2;
          nearest = k;
        }
      }
      sum[l] = T(1);
      for (int j = 0; j < D; ++j) v[j][l] = mix.atom(nearest)[j];
    }
  }

  alignas(64) T inv_sum[W], c_noise[W];
  for (int l = 0; l < W; ++l) {
    inv_sum[l] = T(1) / sum[l];
    c_noise[l] = da[l] / a[l];
  }
  for (int j = 0; j < D; ++j) {
    for (int l = 0; l < W; ++l) {
      const T m = v[j][l] * inv_sum[l];
      v[j][l] = c_noise[l] * (x[j][l] - b[l] * m) + db[l] * m;
    }
  }
}

/// a, b, a', b' of one lane at time t, from s = 1 - t as the scalar
/// schedules; written for the body of a vectorised lane loop.
template <class T>
FMG_LANE_INLINE void schedule_lane(ScheduleKind kind, T t, T& a, T& b, T& da,
                                   T& db) {
  const T half_pi = math::pi<T>() / T(2);
  if (kind == ScheduleKind::linear) {
    a = T(1) - t;
    b = t;
    da = T(-1);
    db = T(1);
  } else if (kind == ScheduleKind::variance_preserving) {
    a = sin_quadrant(half_pi * (T(1) - t));
    b = sin_quadrant(half_pi * t);
    da = -half_pi * b;
    db = half_pi * a;
  } else {
    const T sin_s = sin_quadrant(half_pi * (T(1) - t));
    const T sin_t = sin_quadrant(half_pi * t);
    const T sin_pi_t = T(2) * sin_s * sin_t;
    a = sin_s * sin_s;
    b = sin_t * sin_t;
    da = -half_pi * sin_pi_t;
    db = half_pi * sin_pi_t;
  }
}

/// velocity_lanes for K atoms known at compile time, as one loop over lanes
/// whose body is the per-sample formula, so that every temporary stays in a
/// vector register. The atom of largest log term contributes e^0 = 1
/// exactly, so only the other K - 1 exponentials are evaluated: their
/// arguments are gathered past the maximum's position with selects and
/// scattered back in atom order, which leaves every sum in the order of the
/// general loop. Lanes whose every term is -inf are flagged in `empty`.
template <class T, int D, int W, int K, ScheduleKind Kind>
FMG_LANE_INLINE bool velocity_lanes_fixed(const MixtureView<T>& mix, const T* t,
                                          const T (&x)[D][W], T (&v)[D][W],
                                          T (&empty_lane)[W]) {
  T mu[K][D], log_w[K];
  for (int k = 0; k < K; ++k) {
    log_w[k] = mix.log_weights[k];
    for (int j = 0; j < D; ++j) mu[k][j] = mix.atom(k)[j];
  }
  T any_empty = T(0);
#pragma omp simd reduction(max : any_empty)
  for (int l = 0; l < W; ++l) {
    T a, b, da, db;
    schedule_lane(Kind, t[l], a, b, da, db);
    const T inv_a = T(1) / a;
    const T inv_two_a2 = T(0.5) * inv_a * inv_a;
    T term[K];
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      T dist2 = T(0);
#pragma GCC unroll 8
      for (int j = 0; j < D; ++j) {
        const T diff = fmadd(-b, mu[k][j], x[j][l]);
        dist2 = fmadd(diff, diff, dist2);
      }
      term[k] = fmadd(-dist2, inv_two_a2, log_w[k]);
    }
    // The index of the largest term is held as T, so that every select in
    // the loop works on vectors of one width.
    T top = term[0];
    T top_index = T(0);
#pragma GCC unroll 8
    for (int k = 1; k < K; ++k) {
      const bool larger = top < term[k];
      top = larger ? term[k] : top;
      top_index = larger ? T(k) : top_index;
    }
    const bool empty = is_minus_infinity(top);
    T e[K];
    e[0] = T(1);
    if (K > 1) {
      T other[K > 1 ? K - 1 : 1];
#pragma GCC unroll 8
      for (int k = 0; k + 1 < K; ++k) {
        const T this_term = term[k];
        const T next_term = term[k + 1];
        other[k] = exp_nonpositive((T(k) < top_index ? this_term : next_term) - top);
      }
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) {
        const T below = other[k < K - 1 ? k : K - 2];
        const T above = other[k > 0 ? k - 1 : 0];
        const T value = T(k) < top_index ? below : above;
        e[k] = T(k) == top_index ? T(1) : value;
      }
    }
    T sum = T(0);
    T mean[D];
#pragma GCC unroll 8
    for (int j = 0; j < D; ++j) mean[j] = T(0);
#pragma GCC unroll 8
    for (int k = 0; k < K; ++k) {
      sum += e[k];
#pragma GCC unroll 8
      for (int j = 0; j < D; ++j) mean[j] = fmadd(e[k], mu[k][j], mean[j]);
    }
    const T inv_sum = T(1) / sum;
    const T c_noise = da * inv_a;
#pragma GCC unroll 8
    for (int j = 0; j < D; ++j) {
      const T m = mean[j] * inv_sum;
      v[j][l] = fmadd(c_noise, fmadd(-b, m, x[j][l]), db * m);
    }
    empty_lane[l] = empty ? T(1) : T(0);
    any_empty = empty ? T(1) : any_empty;
  }
  return any_empty > T(0);
}

/// Per-lane state of the lane engine.
template <class T, int D>
struct Lanes {
  static constexpr int W = lane_width<T>;
  alignas(64) T x[D][W], k1[D][W], k2[D][W], k3[D][W], k4[D][W], k5[D][W],
      k6[D][W], k7[D][W], stage[D][W], next[D][W];
  alignas(64) T t[W], h[W], t_new[W], stage_t[W];
  alignas(64) T previous_rejected[W];
  /// Counters, held as T so that the lane loops updating them vectorise;
  /// T counts exactly far beyond any step limit.
  alignas(64) T accepted[W], rejected[W], evaluations[W], non_finite[W];
  alignas(64) T idle[W];   ///< 1 where sample is -1, else 0.
  std::int64_t sample[W];  ///< Index in the chunk, or -1 for an idle lane.
};

template <class T, int D>
class LaneRunner {
 public:
  static constexpr int W = lane_width<T>;

  LaneRunner(const LaneJob<T>& job, FlowTally& tally)
      : job_(job), mix_(job.mixture), problem_(job.problem),
        chunk_(*job.chunk), tally_(tally), label_scale_(endpoint_scale(job.problem)),
        next_(job.begin) {}

  void run() {
    if (problem_.method == Method::dopri5) {
      run_dopri5();
    } else {
      run_fixed();
    }
  }

 private:
  using Vec = LocalVec<T, D>;

  /// Returns the starting point of sample i of the chunk and writes it to the
  /// base-sample output when one is requested.
  Vec read_start(std::size_t i) const {
    Vec point{};
    const std::size_t row = i * D;
    if (chunk_.starts != nullptr) {
      for (int j = 0; j < D; ++j) point[j] = chunk_.starts[row + j];
    } else {
      philox_base_sample(problem_.seed, chunk_.first_index + i, point);
    }
    if (chunk_.base_samples != nullptr) {
      for (int j = 0; j < D; ++j) chunk_.base_samples[row + j] = point[j];
    }
    return point;
  }

  /// Loads sample i of the chunk into lane l's state x.
  void load(int l, std::size_t i) {
    const Vec point = read_start(i);
    for (int j = 0; j < D; ++j) s_.x[j][l] = point[j];
    s_.sample[l] = static_cast<std::int64_t>(i);
    s_.idle[l] = T(0);
  }

  /// Writes lane l's results and counts them.
  void finish(int l, const SampleCounters& counters) {
    const std::size_t i = static_cast<std::size_t>(s_.sample[l]);
    const Vec point = lane_point(s_.x, l);
    const int label = endpoint_label(mix_, label_scale_, counters, point);
    if (chunk_.endpoints != nullptr) {
      for (int j = 0; j < D; ++j) chunk_.endpoints[i * D + j] = point[j];
    }
    if (chunk_.labels != nullptr) chunk_.labels[i] = label;
    tally_.add(counters, label);
    s_.sample[l] = -1;
    s_.idle[l] = T(1);
  }

  SampleCounters counters_of(int l, SampleStatus status) const {
    SampleCounters counters;
    counters.accepted = static_cast<std::uint32_t>(s_.accepted[l]);
    counters.rejected = static_cast<std::uint32_t>(s_.rejected[l]);
    counters.evaluations = static_cast<std::uint32_t>(s_.evaluations[l]);
    counters.status = status;
    return counters;
  }

  /// Prepares the next W samples of the range for Dormand-Prince at once:
  /// their first velocity and, unless the user fixed it, their first step
  /// by the heuristic of dopri5_first_step, both evaluated across lanes.
  /// Lanes past the end of the range compute on zeros and are never used.
  void prepare_dopri5_starts() {
    Ready& r = ready_;
    r.count = static_cast<int>(std::min<std::size_t>(W, job_.end - next_));
    r.used = 0;
    for (int l = 0; l < W; ++l) {
      const Vec point = l < r.count ? read_start(next_ + static_cast<std::size_t>(l)) : Vec{};
      for (int j = 0; j < D; ++j) r.x[j][l] = point[j];
      r.sample[l] = static_cast<std::int64_t>(next_) + l;
    }
    next_ += static_cast<std::size_t>(r.count);

    alignas(64) T zero[W];
    for (int l = 0; l < W; ++l) zero[l] = T(0);
    velocity(zero, r.x, r.k1);
    const StepControl<T>& control = problem_.control;
    for (int l = 0; l < W; ++l) {
      bool finite = true;
      for (int j = 0; j < D; ++j) finite = finite && math::isfinite(r.k1[j][l]);
      r.finite[l] = finite ? T(1) : T(0);
      r.evaluations[l] = T(1);
    }

    if (control.initial_step > T(0)) {
      for (int l = 0; l < W; ++l) r.h[l] = control.initial_step;
      return;
    }
    // dopri5_first_step lane by lane, with the second velocity evaluated
    // across lanes between its two halves.
    alignas(64) T d1[W], h0[W];
    for (int l = 0; l < W; ++l) {
      const Vec x = lane_point(r.x, l);
      const Vec k1 = lane_point(r.k1, l);
      h0[l] = dopri5_trial_step(x, k1, problem_.t_end, control, d1[l]);
      for (int j = 0; j < D; ++j) r.stage[j][l] = x[j] + h0[l] * k1[j];
    }
    velocity(h0, r.stage, r.k2);

    for (int l = 0; l < W; ++l) {
      r.h[l] = dopri5_first_step_from_trial(lane_point(r.x, l), lane_point(r.k1, l),
                                            lane_point(r.k2, l), h0[l], d1[l], control);
      r.evaluations[l] = T(2);
    }
  }

  /// Returns lane l of a [D][W] array as a point.
  static Vec lane_point(const T (&values)[D][W], int l) {
    Vec point{};
    for (int j = 0; j < D; ++j) point[j] = values[j][l];
    return point;
  }

  /// Starts lane l on the next prepared sample. Returns false when that
  /// sample failed at once (and was finished).
  bool start_dopri5(int l) {
    if (ready_.used == ready_.count) prepare_dopri5_starts();
    Ready& r = ready_;
    const int from = r.used++;
    for (int j = 0; j < D; ++j) {
      s_.x[j][l] = r.x[j][from];
      s_.k1[j][l] = r.k1[j][from];
    }
    s_.sample[l] = r.sample[from];
    s_.idle[l] = T(0);
    s_.t[l] = T(0);
    s_.accepted[l] = T(0);
    s_.rejected[l] = T(0);
    s_.non_finite[l] = T(0);
    s_.previous_rejected[l] = T(0);
    s_.h[l] = r.h[from];
    if (!(r.finite[from] > T(0))) {
      s_.evaluations[l] = T(1);
      finish(l, counters_of(l, SampleStatus::non_finite_state));
      return false;
    }
    s_.evaluations[l] = r.evaluations[from];
    return true;
  }

  /// Finishes every lane that reached t_end or a stop condition and starts
  /// idle lanes on the next samples. Returns whether any lane is busy.
  bool settle_dopri5() {
    // Most steps leave every lane running: find the lanes that need
    // attention in one vectorised pass before visiting them one by one.
    const T t_end = problem_.t_end;
    const T max_steps = static_cast<T>(problem_.control.max_steps);
    T attention = T(0);
#pragma omp simd reduction(max : attention)
    for (int l = 0; l < W; ++l) {
      const bool stop = !(s_.t[l] < t_end) || s_.non_finite[l] >= T(16) ||
                        s_.accepted[l] + s_.rejected[l] >= max_steps ||
                        s_.idle[l] > T(0);
      attention = stop ? T(1) : attention;
    }
    if (!(attention > T(0))) return true;
    bool busy = false;
    for (int l = 0; l < W; ++l) {
      for (;;) {
        if (s_.sample[l] < 0) {
          if (next_ >= job_.end && ready_.used == ready_.count) break;
          if (!start_dopri5(l)) continue;
        }
        if (!(s_.t[l] < problem_.t_end)) {
          finish(l, counters_of(l, SampleStatus::ok));
        } else if (s_.non_finite[l] >= T(16)) {
          finish(l, counters_of(l, SampleStatus::non_finite_state));
        } else if (s_.accepted[l] + s_.rejected[l] >=
                   static_cast<T>(problem_.control.max_steps)) {
          finish(l, counters_of(l, SampleStatus::max_steps_reached));
        } else {
          busy = true;
          break;
        }
      }
    }
    return busy;
  }

  /// Stage argument: stage = x + h * sum_i c_i k_i over the given stages.
  template <class... Pairs>
  void form_stage(T (&out)[D][W], const Pairs&... pairs) {
    for (int j = 0; j < D; ++j) {
      for (int l = 0; l < W; ++l) {
        T sum = T(0);
        ((sum = fmadd(pairs.first, pairs.second[j][l], sum)), ...);
        out[j][l] = fmadd(s_.h[l], sum, s_.x[j][l]);
      }
    }
  }

  void evaluate(T c, T (&k)[D][W], const T (&at)[D][W]) {
    for (int l = 0; l < W; ++l) {
      s_.stage_t[l] = math::min(s_.t[l] + c * s_.h[l], s_.t_new[l]);
    }
    velocity(s_.stage_t, at, k);
  }

  /// velocity_lanes with the atom count fixed at compile time for small
  /// mixtures.
  void velocity(const T* t, const T (&at)[D][W], T (&k)[D][W]) const {
    switch (mix_.num_atoms) {
      case 1: velocity_fixed<1>(t, at, k); break;
      case 2: velocity_fixed<2>(t, at, k); break;
      case 3: velocity_fixed<3>(t, at, k); break;
      case 4: velocity_fixed<4>(t, at, k); break;
      default: velocity_lanes<T, D, W, 0>(mix_, problem_.schedule, t, at, k); break;
    }
  }

  template <int K>
  void velocity_fixed(const T* t, const T (&at)[D][W], T (&k)[D][W]) const {
    alignas(64) T empty_lane[W];
    bool any_empty = false;
    switch (problem_.schedule) {
      case ScheduleKind::linear:
        any_empty = velocity_lanes_fixed<T, D, W, K, ScheduleKind::linear>(
            mix_, t, at, k, empty_lane);
        break;
      case ScheduleKind::variance_preserving:
        any_empty = velocity_lanes_fixed<T, D, W, K, ScheduleKind::variance_preserving>(
            mix_, t, at, k, empty_lane);
        break;
      default:
        any_empty = velocity_lanes_fixed<T, D, W, K, ScheduleKind::cosine>(
            mix_, t, at, k, empty_lane);
        break;
    }
    if (any_empty) {
      for (int l = 0; l < W; ++l) {
        if (empty_lane[l] > T(0)) nearest_atom_velocity(l, t[l], at, k);
      }
    }
  }

  /// Sets lane l's velocity with the posterior mean replaced by the nearest
  /// atom of positive weight, for a point whose every log term is -inf, as
  /// the scalar kernel does.
  void nearest_atom_velocity(int l, T t, const T (&at)[D][W], T (&k)[D][W]) const {
    T a, b, da, db;
    schedule_lane(problem_.schedule, t, a, b, da, db);
    const Vec point = lane_point(at, l);
    int nearest = 0;
    T nearest_dist = math::infinity<T>();
    for (int kk = 0; kk < mix_.num_atoms; ++kk) {
      if (is_minus_infinity(mix_.log_weights[kk])) continue;
      const T dist2 = squared_distance(point, b, mix_.atom(kk));
      if (dist2 < nearest_dist) {
        nearest_dist = dist2;
        nearest = kk;
      }
    }
    const T c_noise = da / a;
    for (int j = 0; j < D; ++j) {
      const T m = mix_.atom(nearest)[j];
      k[j][l] = c_noise * (point[j] - b * m) + db * m;
    }
  }

  void run_dopri5() {
    using Tab = Dopri5Tableau<T>;
    using Pair = std::pair<T, const T (*)[W]>;
    const StepControl<T>& control = problem_.control;
    const T t_end = problem_.t_end;
    for (int l = 0; l < W; ++l) {
      s_.sample[l] = -1;
      s_.idle[l] = T(1);
    }

    while (settle_dopri5()) {

      // Idle lanes run on stale values, which are finite or harmless, and
      // their results are never read.
      for (int l = 0; l < W; ++l) {
        const bool last = s_.t[l] + T(1.01) * s_.h[l] >= t_end;
        s_.h[l] = last ? t_end - s_.t[l] : s_.h[l];
        s_.t_new[l] = last ? t_end : s_.t[l] + s_.h[l];
      }
      form_stage(s_.stage, Pair{Tab::a21, s_.k1});
      evaluate(dopri5::c2<T>(), s_.k2, s_.stage);
      form_stage(s_.stage, Pair{Tab::a31, s_.k1}, Pair{Tab::a32, s_.k2});
      evaluate(dopri5::c3<T>(), s_.k3, s_.stage);
      form_stage(s_.stage, Pair{Tab::a41, s_.k1}, Pair{Tab::a42, s_.k2},
                 Pair{Tab::a43, s_.k3});
      evaluate(dopri5::c4<T>(), s_.k4, s_.stage);
      form_stage(s_.stage, Pair{Tab::a51, s_.k1}, Pair{Tab::a52, s_.k2},
                 Pair{Tab::a53, s_.k3}, Pair{Tab::a54, s_.k4});
      evaluate(dopri5::c5<T>(), s_.k5, s_.stage);
      form_stage(s_.stage, Pair{Tab::a61, s_.k1}, Pair{Tab::a62, s_.k2},
                 Pair{Tab::a63, s_.k3}, Pair{Tab::a64, s_.k4},
                 Pair{Tab::a65, s_.k5});
      evaluate(T(1), s_.k6, s_.stage);
      form_stage(s_.next, Pair{Tab::b1, s_.k1}, Pair{Tab::b3, s_.k3},
                 Pair{Tab::b4, s_.k4}, Pair{Tab::b5, s_.k5},
                 Pair{Tab::b6, s_.k6});
      evaluate(T(1), s_.k7, s_.next);

      alignas(64) T err[W];
      for (int l = 0; l < W; ++l) err[l] = T(0);
      for (int j = 0; j < D; ++j) {
        for (int l = 0; l < W; ++l) {
          T combined = Tab::e1 * s_.k1[j][l];
          combined = fmadd(Tab::e3, s_.k3[j][l], combined);
          combined = fmadd(Tab::e4, s_.k4[j][l], combined);
          combined = fmadd(Tab::e5, s_.k5[j][l], combined);
          combined = fmadd(Tab::e6, s_.k6[j][l], combined);
          combined = fmadd(Tab::e7, s_.k7[j][l], combined);
          const T local = s_.h[l] * combined;
          const T scale =
              control.atol + control.rtol * math::max(math::fabs(s_.x[j][l]),
                                                      math::fabs(s_.next[j][l]));
          err[l] += (local / scale) * (local / scale);
        }
      }
      // Written without short-circuits and with both sides of every select
      // computed, so the loops vectorise.
      const T safety = control.safety;
      const T min_factor = control.min_factor;
      const T max_factor = control.max_factor;
      alignas(64) T accept[W];
      for (int l = 0; l < W; ++l) {
        const T e = math::sqrt(err[l] / T(D));
        const bool finite = math::isfinite(e);
        const bool accepted = finite & (e <= T(1));
        const T shrink_or_grow = safety * pow_minus_fifth(e);
        const T growth_limit = s_.previous_rejected[l] > T(0) ? T(1) : max_factor;
        const T bounded = math::min(growth_limit, math::max(min_factor, shrink_or_grow));
        const T accept_factor = e == T(0) ? growth_limit : bounded;
        const T reject_factor = finite ? math::max(min_factor, shrink_or_grow) : min_factor;
        const T t_old = s_.t[l];
        const T t_new = s_.t_new[l];
        accept[l] = accepted ? T(1) : T(0);
        s_.t[l] = accepted ? t_new : t_old;
        s_.h[l] *= accepted ? accept_factor : reject_factor;
        s_.accepted[l] += accept[l];
        s_.rejected[l] += T(1) - accept[l];
        s_.non_finite[l] += finite ? T(0) : T(1);
        s_.evaluations[l] += T(6);
        s_.previous_rejected[l] = T(1) - accept[l];
      }
      for (int j = 0; j < D; ++j) {
        for (int l = 0; l < W; ++l) {
          const bool accepted = accept[l] > T(0);
          const T x_old = s_.x[j][l];
          const T x_new = s_.next[j][l];
          const T k_old = s_.k1[j][l];
          const T k_new = s_.k7[j][l];
          s_.x[j][l] = accepted ? x_new : x_old;
          s_.k1[j][l] = accepted ? k_new : k_old;
        }
      }
    }
  }

  /// Runs a fixed-step method. W consecutive samples share every step time,
  /// so each lane follows integrate_fixed step by step. A lane whose state
  /// turns non-finite freezes with the counters the scalar path reports.
  void run_fixed() {
    const T t_end = problem_.t_end;
    const int steps = problem_.steps;
    for (std::size_t first = job_.begin; first < job_.end; first += W) {
      const int used = static_cast<int>(std::min<std::size_t>(W, job_.end - first));
      for (int l = 0; l < W; ++l) {
        load(l, first + static_cast<std::size_t>(std::min(l, used - 1)));
        s_.accepted[l] = T(0);
        s_.evaluations[l] = T(0);
        s_.non_finite[l] = T(0);
      }
      for (int i = 0; i < steps; ++i) {
        const T t0 = t_end * T(i) / T(steps);
        const T t1 = i + 1 == steps ? t_end : t_end * T(i + 1) / T(steps);
        const T h = t1 - t0;
        step_fixed(t0, t1, h);
        for (int l = 0; l < W; ++l) {
          bool finite = true;
          for (int j = 0; j < D; ++j) finite = finite && math::isfinite(s_.next[j][l]);
          const bool alive = s_.non_finite[l] == T(0);
          for (int j = 0; j < D; ++j) {
            s_.x[j][l] = alive ? s_.next[j][l] : s_.x[j][l];
          }
          s_.evaluations[l] += alive ? static_cast<T>(stage_count()) : T(0);
          s_.accepted[l] += alive && finite ? T(1) : T(0);
          s_.non_finite[l] = alive && !finite ? T(1) : s_.non_finite[l];
        }
      }
      for (int l = 0; l < used; ++l) {
        s_.sample[l] = static_cast<std::int64_t>(first + static_cast<std::size_t>(l));
        s_.rejected[l] = T(0);
        finish(l, counters_of(l, s_.non_finite[l] == T(0)
                                     ? SampleStatus::ok
                                     : SampleStatus::non_finite_state));
      }
    }
  }

  int stage_count() const {
    switch (problem_.method) {
      case Method::euler: return 1;
      case Method::heun: return 2;
      default: return 4;
    }
  }

  /// Takes one step of Euler, Heun or RK4 from x into next, for every lane.
  void step_fixed(T t0, T t1, T h) {
    alignas(64) T time[W];
    const auto at = [&](T value) {
      for (int l = 0; l < W; ++l) time[l] = value;
      return time;
    };
    velocity(at(t0), s_.x, s_.k1);
    if (problem_.method == Method::euler) {
      for (int j = 0; j < D; ++j) {
        for (int l = 0; l < W; ++l) s_.next[j][l] = s_.x[j][l] + h * s_.k1[j][l];
      }
      return;
    }
    if (problem_.method == Method::heun) {
      for (int j = 0; j < D; ++j) {
        for (int l = 0; l < W; ++l) s_.stage[j][l] = s_.x[j][l] + h * s_.k1[j][l];
      }
      velocity(at(t1), s_.stage, s_.k2);
      const T half_h = T(0.5) * h;
      for (int j = 0; j < D; ++j) {
        for (int l = 0; l < W; ++l) {
          s_.next[j][l] = s_.x[j][l] + half_h * (s_.k1[j][l] + s_.k2[j][l]);
        }
      }
      return;
    }
    const T half_h = T(0.5) * h;
    const T t_mid = math::min(t0 + half_h, t1);
    for (int j = 0; j < D; ++j) {
      for (int l = 0; l < W; ++l) s_.stage[j][l] = s_.x[j][l] + half_h * s_.k1[j][l];
    }
    velocity(at(t_mid), s_.stage, s_.k2);
    for (int j = 0; j < D; ++j) {
      for (int l = 0; l < W; ++l) s_.stage[j][l] = s_.x[j][l] + half_h * s_.k2[j][l];
    }
    velocity(at(t_mid), s_.stage, s_.k3);
    for (int j = 0; j < D; ++j) {
      for (int l = 0; l < W; ++l) s_.stage[j][l] = s_.x[j][l] + h * s_.k3[j][l];
    }
    velocity(at(t1), s_.stage, s_.k4);
    const T sixth_h = h / T(6);
    for (int j = 0; j < D; ++j) {
      for (int l = 0; l < W; ++l) {
        s_.next[j][l] =
            s_.x[j][l] + sixth_h * (s_.k1[j][l] + T(2) * s_.k2[j][l] +
                                    T(2) * s_.k3[j][l] + s_.k4[j][l]);
      }
    }
  }

  const LaneJob<T>& job_;
  MixtureView<T> mix_;
  FlowProblem<T> problem_;
  const FlowChunk<T>& chunk_;
  FlowTally& tally_;
  T label_scale_;  ///< endpoint_scale of the problem, for the labels.
  std::size_t next_;
  Lanes<T, D> s_{};
  /// Samples whose Dormand-Prince start was computed W at a time, taken by
  /// lanes as they fall idle.
  struct Ready {
    alignas(64) T x[D][W], k1[D][W], k2[D][W], stage[D][W];
    alignas(64) T h[W], finite[W], evaluations[W];
    std::int64_t sample[W];
    int count = 0;
    int used = 0;
  } ready_{};
};

template <class T>
void run_any_dim(const LaneJob<T>& job, FlowTally& tally) {
  switch (job.mixture.dim) {
    case 1: LaneRunner<T, 1>(job, tally).run(); break;
    case 2: LaneRunner<T, 2>(job, tally).run(); break;
    case 3: LaneRunner<T, 3>(job, tally).run(); break;
    case 4: LaneRunner<T, 4>(job, tally).run(); break;
    case 5: LaneRunner<T, 5>(job, tally).run(); break;
    case 6: LaneRunner<T, 6>(job, tally).run(); break;
    case 7: LaneRunner<T, 7>(job, tally).run(); break;
    default: LaneRunner<T, 8>(job, tally).run(); break;
  }
}

}  // namespace

void run(const LaneJob<float>& job, FlowTally& tally) { run_any_dim(job, tally); }
void run(const LaneJob<double>& job, FlowTally& tally) { run_any_dim(job, tally); }

}  // namespace fmg::lanes::FMG_LANES_ISA
