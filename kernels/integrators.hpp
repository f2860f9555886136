// Per-sample Runge-Kutta integrators: Euler, Heun and RK4 with fixed steps,
// and Dormand-Prince 5(4) with an adaptive step of its own.
//
// Each function integrates one sample from t = 0 to t_end, lands its last
// step exactly on t_end, and never evaluates a stage past t_end, which
// matters because the flow's velocity is singular at t = 1.
#pragma once

#include <cstdint>

#include "kernels/common.hpp"

namespace fmg {

/// Number of d-vectors a workspace needs (stages, stage argument, proposal).
inline constexpr int workspace_vectors = 9;

/// Stage vectors of one sample. For Dormand-Prince k1 and k7 are the
/// velocities at the start and the end of the current step.
template <class Vec>
struct Workspace {
  Vec k1, k2, k3, k4, k5, k6, k7;
  Vec stage;  ///< Argument of the next velocity evaluation.
  Vec next;   ///< Proposed state at the end of the step.
};

/// Dormand-Prince step-size control.
template <class T>
struct StepControl {
  T rtol = T(1e-6);
  T atol = T(1e-9);
  T initial_step = T(0);  ///< 0 picks the first step automatically.
  /// Largest first step the automatic choice may take. The host sets it
  /// from the mixture's extent, so that the first step cannot jump over
  /// the early time at which far-apart atoms split the samples.
  T max_first_step = math::infinity<T>();
  std::uint32_t max_steps = 100000;  ///< Attempted steps, accepted or not.
  T safety = T(0.9);
  T min_factor = T(0.2);  ///< Largest shrink of one step.
  T max_factor = T(10);   ///< Largest growth of one step.
};

/// Work and outcome of one sample's integration.
struct SampleCounters {
  std::uint32_t accepted = 0;
  std::uint32_t rejected = 0;
  std::uint32_t evaluations = 0;
  SampleStatus status = SampleStatus::ok;
};

/// Observer that records nothing; the integrators call these hooks after the
/// start and after each accepted step.
struct NullObserver {
  template <class T, class Vec>
  FMG_HD FMG_INLINE void on_start(T, const Vec&) {}
  template <class T, class Vec>
  FMG_HD FMG_INLINE void on_fixed_step(T, T, const Vec&) {}
  template <class T, class Vec, class Ws>
  FMG_HD FMG_INLINE void on_dopri5_step(T, T, const Vec&, const Ws&) {}
};

namespace detail {

template <class Vec>
FMG_HD FMG_INLINE bool all_finite(const Vec& x) {
  bool finite = true;
  for (int j = 0; j < x.size(); ++j) finite = finite && math::isfinite(x[j]);
  return finite;
}

}  // namespace detail

/// Integrates dx/dt = field(t, x) with `steps` equal steps of `method`
/// (Euler, Heun or RK4) from t = 0 to t_end, in place. A non-finite state
/// stops the sample with status non_finite_state.
template <class T, class Field, class Vec, class Observer = NullObserver>
FMG_HD FMG_INLINE SampleCounters integrate_fixed(Method method,
                                                 const Field& field, Vec& x,
                                                 Workspace<Vec>& ws, T t_end,
                                                 int steps,
                                                 Observer&& observer = {}) {
  SampleCounters counters;
  const int d = x.size();
  observer.on_start(T(0), x);
  for (int i = 0; i < steps; ++i) {
    const T t0 = t_end * T(i) / T(steps);
    const T t1 = i + 1 == steps ? t_end : t_end * T(i + 1) / T(steps);
    const T h = t1 - t0;
    field(t0, x, ws.k1);
    if (method == Method::euler) {
      counters.evaluations += 1;
      for (int j = 0; j < d; ++j) x[j] += h * ws.k1[j];
    } else if (method == Method::heun) {
      counters.evaluations += 2;
      for (int j = 0; j < d; ++j) ws.stage[j] = x[j] + h * ws.k1[j];
      field(t1, ws.stage, ws.k2);
      const T half_h = T(0.5) * h;
      for (int j = 0; j < d; ++j) x[j] += half_h * (ws.k1[j] + ws.k2[j]);
    } else {
      counters.evaluations += 4;
      const T half_h = T(0.5) * h;
      const T t_mid = math::min(t0 + half_h, t1);
      for (int j = 0; j < d; ++j) ws.stage[j] = x[j] + half_h * ws.k1[j];
      field(t_mid, ws.stage, ws.k2);
      for (int j = 0; j < d; ++j) ws.stage[j] = x[j] + half_h * ws.k2[j];
      field(t_mid, ws.stage, ws.k3);
      for (int j = 0; j < d; ++j) ws.stage[j] = x[j] + h * ws.k3[j];
      field(t1, ws.stage, ws.k4);
      const T sixth_h = h / T(6);
      for (int j = 0; j < d; ++j) {
        x[j] += sixth_h *
                (ws.k1[j] + T(2) * ws.k2[j] + T(2) * ws.k3[j] + ws.k4[j]);
      }
    }
    if (!detail::all_finite(x)) {
      counters.status = SampleStatus::non_finite_state;
      return counters;
    }
    counters.accepted += 1;
    observer.on_fixed_step(t0, t1, x);
  }
  return counters;
}

namespace dopri5 {

// Nodes of the Dormand-Prince method.
template <class T> FMG_HD FMG_INLINE constexpr T c2() { return T(1) / T(5); }
template <class T> FMG_HD FMG_INLINE constexpr T c3() { return T(3) / T(10); }
template <class T> FMG_HD FMG_INLINE constexpr T c4() { return T(4) / T(5); }
template <class T> FMG_HD FMG_INLINE constexpr T c5() { return T(8) / T(9); }

}  // namespace dopri5

/// Butcher tableau of Dormand and Prince (1980), as tabulated in Hairer,
/// Norsett and Wanner, Solving Ordinary Differential Equations I, Table
/// II.5.2. The fifth-order weights b are the last stage row; e = b - b_hat
/// are the differences to the embedded fourth-order weights.
template <class T>
struct Dopri5Tableau {
  static constexpr T a21 = T(1) / T(5);
  static constexpr T a31 = T(3) / T(40), a32 = T(9) / T(40);
  static constexpr T a41 = T(44) / T(45), a42 = T(-56) / T(15),
                     a43 = T(32) / T(9);
  static constexpr T a51 = T(19372) / T(6561), a52 = T(-25360) / T(2187),
                     a53 = T(64448) / T(6561), a54 = T(-212) / T(729);
  static constexpr T a61 = T(9017) / T(3168), a62 = T(-355) / T(33),
                     a63 = T(46732) / T(5247), a64 = T(49) / T(176),
                     a65 = T(-5103) / T(18656);
  static constexpr T b1 = T(35) / T(384), b3 = T(500) / T(1113),
                     b4 = T(125) / T(192), b5 = T(-2187) / T(6784),
                     b6 = T(11) / T(84);
  static constexpr T e1 = T(71) / T(57600), e3 = T(-71) / T(16695),
                     e4 = T(71) / T(1920), e5 = T(-17253) / T(339200),
                     e6 = T(22) / T(525), e7 = T(-1) / T(40);
};

/// Returns the RMS over j of value(j), computed relative to its largest
/// magnitude, so that it stays finite where the squares would overflow
/// (velocities near 1e150 scaled by tolerances near 1e-6).
template <class T, class Value>
FMG_HD FMG_INLINE T scaled_rms(int d, const Value& value) {
  T largest = T(0);
  for (int j = 0; j < d; ++j) largest = math::max(largest, math::fabs(value(j)));
  if (!(largest > T(0)) || !math::isfinite(largest)) return largest;
  T sum = T(0);
  for (int j = 0; j < d; ++j) {
    const T ratio = value(j) / largest;
    sum += ratio * ratio;
  }
  return largest * math::sqrt(sum / T(d));
}

/// Returns the trial step h0 of dopri5_first_step from x and its velocity
/// k1 at t = 0, and stores the scaled norm of k1 in `d1`. Never exceeds
/// t_end or control.max_first_step.
template <class T, class Vec>
FMG_HD FMG_INLINE T dopri5_trial_step(const Vec& x, const Vec& k1, T t_end,
                                      const StepControl<T>& control, T& d1) {
  const int d = x.size();
  const auto scale = [&](int j) {
    return control.atol + control.rtol * math::fabs(x[j]);
  };
  const T d0 = scaled_rms<T>(d, [&](int j) { return x[j] / scale(j); });
  d1 = scaled_rms<T>(d, [&](int j) { return k1[j] / scale(j); });
  const T h0 = (d0 < T(1e-5) || d1 < T(1e-5)) ? T(1e-6) : T(0.01) * d0 / d1;
  return math::min(math::min(h0, t_end), control.max_first_step);
}

/// Returns the first step of dopri5_first_step from the trial step h0, d1
/// and the velocity k2 at (h0, x + h0 k1), at most control.max_first_step.
template <class T, class Vec>
FMG_HD FMG_INLINE T dopri5_first_step_from_trial(
    const Vec& x, const Vec& k1, const Vec& k2, T h0, T d1,
    const StepControl<T>& control) {
  const int d = x.size();
  const T d2 = scaled_rms<T>(d, [&](int j) {
                 return (k2[j] - k1[j]) / (control.atol + control.rtol * math::fabs(x[j]));
               }) /
               h0;
  const T dmax = math::max(d1, d2);
  T h1 = dmax <= T(1e-15) ? math::max(T(1e-6), h0 * T(1e-3))
                          : math::pow(T(0.01) / dmax, T(0.2));
  // A non-finite second velocity gives dmax = inf and h1 = 0, a step that
  // would never advance: keep the trial step, whose error control then
  // reports the non-finite state.
  if (!math::isfinite(dmax) || !math::isfinite(h1)) h1 = h0;
  return math::min(math::min(T(100) * h0, h1), control.max_first_step);
}

/// Chooses the first Dormand-Prince step from x, its velocity k1 at t = 0
/// and one more velocity evaluation (into `k2`, with `stage` as scratch),
/// after Hairer, Norsett and Wanner, Section II.4. Never exceeds t_end.
template <class T, class Field, class Vec>
FMG_HD FMG_INLINE T dopri5_first_step(const Field& field, const Vec& x,
                                      const Vec& k1, Vec& stage, Vec& k2,
                                      T t_end, const StepControl<T>& control) {
  T d1 = T(0);
  const T h0 = dopri5_trial_step(x, k1, t_end, control, d1);
  for (int j = 0; j < x.size(); ++j) stage[j] = x[j] + h0 * k1[j];
  field(h0, stage, k2);
  return dopri5_first_step_from_trial(x, k1, k2, h0, d1, control);
}

/// Returns one component's embedded error estimate of a Dormand-Prince step
/// of length h, divided by its tolerance atol + rtol max(|x|, |next|); the
/// step's error is the RMS of these over the components.
template <class T>
FMG_HD FMG_INLINE T dopri5_scaled_error(T h, T k1, T k3, T k4, T k5, T k6, T k7, T x,
                                        T next, const StepControl<T>& control) {
  using Tab = Dopri5Tableau<T>;
  const T local = h * (Tab::e1 * k1 + Tab::e3 * k3 + Tab::e4 * k4 + Tab::e5 * k5 +
                       Tab::e6 * k6 + Tab::e7 * k7);
  const T scale = control.atol + control.rtol * math::max(math::fabs(x), math::fabs(next));
  return local / scale;
}

/// Returns the factor by which Dormand-Prince scales its step after a
/// finite error estimate `err`. It is at most max_factor for an accepted
/// step (1 right after a rejection) and at least min_factor for a rejected
/// one.
template <class T>
FMG_HD FMG_INLINE T dopri5_step_factor(T err, bool accepted,
                                       bool previous_rejected,
                                       const StepControl<T>& control) {
  if (!accepted) {
    return math::max(control.min_factor,
                     control.safety * math::pow(err, T(-0.2)));
  }
  const T growth_limit = previous_rejected ? T(1) : control.max_factor;
  return err == T(0)
             ? growth_limit
             : math::min(growth_limit,
                         math::max(control.min_factor,
                                   control.safety * math::pow(err, T(-0.2))));
}

/// Integrates dx/dt = field(t, x) from t = 0 to t_end in place with
/// Dormand-Prince 5(4), controlling the RMS error scaled by
/// atol + rtol * max(|x_j|, |x_new_j|) with an elementary controller whose
/// growth and shrink per step are bounded by `control`.
///
/// Stops with status max_steps_reached after control.max_steps attempted
/// steps, and with non_finite_state after the 16th step whose error estimate
/// is not finite (each such step is rejected and shrinks by min_factor).
template <class T, class Field, class Vec, class Observer = NullObserver>
FMG_HD FMG_INLINE SampleCounters integrate_dopri5(
    const Field& field, Vec& x, Workspace<Vec>& ws, T t_end,
    const StepControl<T>& control, Observer&& observer = {}) {
  using Tab = Dopri5Tableau<T>;
  const T a21 = Tab::a21, a31 = Tab::a31, a32 = Tab::a32, a41 = Tab::a41,
          a42 = Tab::a42, a43 = Tab::a43, a51 = Tab::a51, a52 = Tab::a52,
          a53 = Tab::a53, a54 = Tab::a54, a61 = Tab::a61, a62 = Tab::a62,
          a63 = Tab::a63, a64 = Tab::a64, a65 = Tab::a65;
  const T b1 = Tab::b1, b3 = Tab::b3, b4 = Tab::b4, b5 = Tab::b5, b6 = Tab::b6;

  SampleCounters counters;
  const int d = x.size();
  T t = T(0);
  observer.on_start(t, x);

  field(t, x, ws.k1);
  counters.evaluations += 1;
  if (!detail::all_finite(ws.k1)) {
    counters.status = SampleStatus::non_finite_state;
    return counters;
  }

  T h = control.initial_step;
  if (!(h > T(0))) {
    h = dopri5_first_step(field, x, ws.k1, ws.stage, ws.k2, t_end, control);
    counters.evaluations += 1;
  }

  bool previous_rejected = false;
  int non_finite_steps = 0;
  while (t < t_end) {
    if (counters.accepted + counters.rejected >= control.max_steps) {
      counters.status = SampleStatus::max_steps_reached;
      return counters;
    }

    // Stretch a step that would leave a sliver before t_end, and land the
    // last step exactly on t_end.
    bool last = false;
    if (t + T(1.01) * h >= t_end) {
      h = t_end - t;
      last = true;
    }
    const T t_new = last ? t_end : t + h;

    for (int j = 0; j < d; ++j) ws.stage[j] = x[j] + h * (a21 * ws.k1[j]);
    field(math::min(t + dopri5::c2<T>() * h, t_new), ws.stage, ws.k2);
    for (int j = 0; j < d; ++j) {
      ws.stage[j] = x[j] + h * (a31 * ws.k1[j] + a32 * ws.k2[j]);
    }
    field(math::min(t + dopri5::c3<T>() * h, t_new), ws.stage, ws.k3);
    for (int j = 0; j < d; ++j) {
      ws.stage[j] =
          x[j] + h * (a41 * ws.k1[j] + a42 * ws.k2[j] + a43 * ws.k3[j]);
    }
    field(math::min(t + dopri5::c4<T>() * h, t_new), ws.stage, ws.k4);
    for (int j = 0; j < d; ++j) {
      ws.stage[j] = x[j] + h * (a51 * ws.k1[j] + a52 * ws.k2[j] +
                                a53 * ws.k3[j] + a54 * ws.k4[j]);
    }
    field(math::min(t + dopri5::c5<T>() * h, t_new), ws.stage, ws.k5);
    for (int j = 0; j < d; ++j) {
      ws.stage[j] = x[j] + h * (a61 * ws.k1[j] + a62 * ws.k2[j] +
                                a63 * ws.k3[j] + a64 * ws.k4[j] +
                                a65 * ws.k5[j]);
    }
    field(t_new, ws.stage, ws.k6);
    for (int j = 0; j < d; ++j) {
      ws.next[j] = x[j] + h * (b1 * ws.k1[j] + b3 * ws.k3[j] +
                               b4 * ws.k4[j] + b5 * ws.k5[j] + b6 * ws.k6[j]);
    }
    field(t_new, ws.next, ws.k7);
    counters.evaluations += 6;

    T err = T(0);
    for (int j = 0; j < d; ++j) {
      const T scaled = dopri5_scaled_error(h, ws.k1[j], ws.k3[j], ws.k4[j], ws.k5[j], ws.k6[j],
                                           ws.k7[j], x[j], ws.next[j], control);
      err += scaled * scaled;
    }
    err = math::sqrt(err / T(d));

    if (!math::isfinite(err)) {
      counters.rejected += 1;
      if (++non_finite_steps >= 16) {
        counters.status = SampleStatus::non_finite_state;
        return counters;
      }
      h *= control.min_factor;
      previous_rejected = true;
      continue;
    }

    if (err <= T(1)) {
      observer.on_dopri5_step(t, h, x, ws);
      for (int j = 0; j < d; ++j) {
        x[j] = ws.next[j];
        ws.k1[j] = ws.k7[j];
      }
      t = t_new;
      counters.accepted += 1;
      h *= dopri5_step_factor(err, true, previous_rejected, control);
      previous_rejected = false;
    } else {
      counters.rejected += 1;
      h *= dopri5_step_factor(err, false, previous_rejected, control);
      previous_rejected = true;
    }
  }
  return counters;
}

}  // namespace fmg
