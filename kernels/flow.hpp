// The flow-matching ODE of one sample: its velocity field and the choice of
// integrator, shared by every backend.
#pragma once

#include <cstdint>

#include "kernels/common.hpp"
#include "kernels/integrators.hpp"
#include "kernels/mixture.hpp"

namespace fmg {

/// Parameters of a flow run that every sample shares, in precision T.
template <class T>
struct FlowProblem {
  ScheduleKind schedule = ScheduleKind::linear;
  Method method = Method::dopri5;
  int steps = 100;  ///< Steps of the fixed-step methods.
  StepControl<T> control;  ///< Used by Dormand-Prince only.
  T t_end = T(0.999);      ///< 1 - eps.
  std::uint64_t seed = 0;  ///< Key of the counter-based base samples.
};

/// The closed-form velocity v(x, t) of a mixture under one schedule.
template <class T>
struct FlowField {
  MixtureView<T> mixture;
  ScheduleKind schedule;

  template <class VecIn, class VecOut>
  FMG_HD FMG_INLINE void operator()(T t, const VecIn& x, VecOut& v) const {
    velocity(mixture, schedule, t, x, v);
  }
};

/// Integrates one sample in place from t = 0 to problem.t_end.
template <class T, class Vec, class Observer = NullObserver>
FMG_HD FMG_INLINE SampleCounters integrate_sample(
    const MixtureView<T>& mixture, const FlowProblem<T>& problem, Vec& x,
    Workspace<Vec>& ws, Observer&& observer = {}) {
  const FlowField<T> field{mixture, problem.schedule};
  if (problem.method == Method::dopri5) {
    return integrate_dopri5(field, x, ws, problem.t_end, problem.control,
                            static_cast<Observer&&>(observer));
  }
  return integrate_fixed(problem.method, field, x, ws, problem.t_end,
                         problem.steps, static_cast<Observer&&>(observer));
}

/// The schedule's b at t_end: an endpoint x(t_end) lies near b(t_end) mu_k
/// for its atom mu_k, at a distance of order a(t_end).
template <class T>
FMG_HD FMG_INLINE T endpoint_scale(const FlowProblem<T>& problem) {
  return evaluate_schedule(problem.schedule, problem.t_end).b;
}

/// Label of an integrated sample: the atom k of positive weight whose
/// b(t_end) mu_k is nearest to the endpoint when the integration succeeded,
/// -1 otherwise; `scale` is endpoint_scale(problem). Comparing with mu_k
/// itself would mislabel close atoms far from the origin: atoms 0.1 apart
/// at distance 1000 are 0.999 * 1000 - 1000 = 1 away from their endpoints
/// at eps = 1e-3, ten times their separation.
template <class T, class Vec>
FMG_HD FMG_INLINE int endpoint_label(const MixtureView<T>& mixture, T scale,
                                     const SampleCounters& counters,
                                     const Vec& x) {
  if (counters.status != SampleStatus::ok) return -1;
  return nearest_weighted_atom(mixture, scale, x);
}

}  // namespace fmg
