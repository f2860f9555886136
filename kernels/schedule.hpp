// Interpolation schedules (a(t), b(t)) and their derivatives.
//
// Every schedule is evaluated from both t and the remaining time s = 1 - t,
// so that a(t), which vanishes at t = 1, keeps full relative accuracy there:
// the cosine schedule's (1 + cos pi t) / 2 is 0 in float at t = 1 - 1e-5,
// while sin^2(pi s / 2) gives the true 2.5e-10.
#pragma once

#include "kernels/common.hpp"

namespace fmg {

/// Values of a schedule at one time.
template <class T>
struct ScheduleValues {
  T a;   ///< Weight of the base sample X0.
  T b;   ///< Weight of the target sample X1.
  T da;  ///< a'(t).
  T db;  ///< b'(t).
};

/// Evaluates a, b, a' and b' of `kind` at time t in [0, 1].
///
/// The remaining time s = 1 - t is exact for t >= 1/2 (Sterbenz), which is
/// where a(t) is small, so a has full relative accuracy up to t = 1.
template <class T>
FMG_HD FMG_INLINE ScheduleValues<T> evaluate_schedule(ScheduleKind kind, T t) {
  const T s = T(1) - t;
  const T half_pi = math::pi<T>() / T(2);
  ScheduleValues<T> v;
  switch (kind) {
    case ScheduleKind::variance_preserving: {
      // a = cos(pi t / 2) = sin(pi s / 2) and b = sin(pi t / 2).
      v.a = math::sin(half_pi * s);
      v.b = math::sin(half_pi * t);
      v.da = -half_pi * v.b;
      v.db = half_pi * v.a;
      break;
    }
    case ScheduleKind::cosine: {
      // a = (1 + cos pi t) / 2 = sin^2(pi s / 2), b = sin^2(pi t / 2) and
      // sin(pi t) = 2 sin(pi s / 2) sin(pi t / 2).
      const T sin_s = math::sin(half_pi * s);
      const T sin_t = math::sin(half_pi * t);
      const T sin_pi_t = T(2) * sin_s * sin_t;
      v.a = sin_s * sin_s;
      v.b = sin_t * sin_t;
      v.da = -half_pi * sin_pi_t;
      v.db = half_pi * sin_pi_t;
      break;
    }
    case ScheduleKind::linear:
    default: {
      v.a = s;
      v.b = t;
      v.da = T(-1);
      v.db = T(1);
      break;
    }
  }
  return v;
}

/// Checks the boundary conditions a(0) = 1, b(0) = 0, a(1) = 0, b(1) = 1
/// of `kind` to within `tolerance`, and that a' < 0 < b' inside (0, 1).
template <class T>
FMG_HD FMG_INLINE bool schedule_boundary_holds(ScheduleKind kind, T tolerance) {
  const ScheduleValues<T> start = evaluate_schedule(kind, T(0));
  const ScheduleValues<T> end = evaluate_schedule(kind, T(1));
  const ScheduleValues<T> middle = evaluate_schedule(kind, T(0.5));
  return math::fabs(start.a - T(1)) <= tolerance &&
         math::fabs(start.b) <= tolerance && math::fabs(end.a) <= tolerance &&
         math::fabs(end.b - T(1)) <= tolerance && middle.da < T(0) &&
         middle.db > T(0);
}

/// Returns log a(t), accurate to full relative precision as t approaches 1.
template <class T>
FMG_HD FMG_INLINE T log_schedule_a(ScheduleKind kind, T t) {
  const T s = T(1) - t;
  const T half_pi = math::pi<T>() / T(2);
  switch (kind) {
    case ScheduleKind::variance_preserving:
      return math::log(math::sin(half_pi * s));
    case ScheduleKind::cosine:
      return T(2) * math::log(math::sin(half_pi * s));
    case ScheduleKind::linear:
    default:
      return math::log(s);
  }
}

}  // namespace fmg
