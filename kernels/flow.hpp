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

/// Label of an integrated sample: its nearest atom of positive weight when
/// the integration succeeded, -1 otherwise.
template <class T, class Vec>
FMG_HD FMG_INLINE int endpoint_label(const MixtureView<T>& mixture,
                                     const SampleCounters& counters,
                                     const Vec& x) {
  if (counters.status != SampleStatus::ok) return -1;
  return nearest_weighted_atom(mixture, x);
}

}  // namespace fmg
