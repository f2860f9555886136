// Per-sample integrators: convergence orders, step control, landing on
// t_end, failure statuses and schedule invariance.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/flow.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

using Vec2 = LocalVec<double, 2>;

struct Builtin {
  std::vector<double> atoms{2.4, 0.0, -1.4, 2.0, -1.4, -2.0};
  std::vector<double> log_weights{std::log(0.45), std::log(0.30),
                                  std::log(0.25)};
  MixtureView<double> view() const {
    return {atoms.data(), log_weights.data(), 3, 2};
  }
};

FlowProblem<double> problem_for(ScheduleKind kind, Method method, double t_end) {
  FlowProblem<double> problem;
  problem.schedule = kind;
  problem.method = method;
  problem.t_end = t_end;
  return problem;
}

Vec2 integrate(const Builtin& mix, const FlowProblem<double>& problem,
               Vec2 x, SampleCounters* counters = nullptr) {
  Workspace<Vec2> ws{};
  const SampleCounters result = integrate_sample(mix.view(), problem, x, ws);
  if (counters != nullptr) *counters = result;
  return x;
}

Vec2 reference_endpoint(const Builtin& mix, ScheduleKind kind, double t_end,
                        Vec2 x) {
  FlowProblem<double> problem = problem_for(kind, Method::dopri5, t_end);
  problem.control.rtol = 1e-13;
  problem.control.atol = 1e-14;
  return integrate(mix, problem, x);
}

double distance(const Vec2& a, const Vec2& b) {
  return std::hypot(a[0] - b[0], a[1] - b[1]);
}

TEST(FixedStep, ConvergenceOrders) {
  const Builtin mix;
  const double t_end = 0.9;
  const Vec2 start{{0.3, -0.4}};
  const struct {
    Method method;
    double order;
    int steps;
  } cases[] = {{Method::euler, 1.0, 400}, {Method::heun, 2.0, 100},
               {Method::rk4, 4.0, 40}};
  for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::variance_preserving,
                            ScheduleKind::cosine}) {
    const Vec2 reference = reference_endpoint(mix, kind, t_end, start);
    for (const auto& c : cases) {
      SCOPED_TRACE(testing::Message() << "schedule " << static_cast<int>(kind)
                                      << " method " << static_cast<int>(c.method));
      FlowProblem<double> coarse = problem_for(kind, c.method, t_end);
      coarse.steps = c.steps;
      FlowProblem<double> fine = coarse;
      fine.steps = 2 * c.steps;
      const double coarse_error = distance(integrate(mix, coarse, start), reference);
      const double fine_error = distance(integrate(mix, fine, start), reference);
      const double observed = std::log2(coarse_error / fine_error);
      EXPECT_NEAR(observed, c.order, 0.25);
    }
  }
}

TEST(FixedStep, CountsStepsAndEvaluations) {
  const Builtin mix;
  FlowProblem<double> problem = problem_for(ScheduleKind::linear, Method::rk4, 0.9);
  problem.steps = 17;
  SampleCounters counters;
  integrate(mix, problem, Vec2{{0.1, 0.2}}, &counters);
  EXPECT_EQ(counters.accepted, 17u);
  EXPECT_EQ(counters.evaluations, 68u);
  EXPECT_EQ(counters.status, SampleStatus::ok);
}

TEST(Dopri5, EndpointMatchesTightReference) {
  const Builtin mix;
  for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::variance_preserving,
                            ScheduleKind::cosine}) {
    SCOPED_TRACE(static_cast<int>(kind));
    const Vec2 start{{-0.8, 1.1}};
    const Vec2 reference = reference_endpoint(mix, kind, 0.999, start);
    FlowProblem<double> problem = problem_for(kind, Method::dopri5, 0.999);
    problem.control.rtol = 1e-8;
    problem.control.atol = 1e-10;
    SampleCounters counters;
    const Vec2 end = integrate(mix, problem, start, &counters);
    EXPECT_EQ(counters.status, SampleStatus::ok);
    EXPECT_LT(distance(end, reference), 1e-6);
  }
}

TEST(Dopri5, ErrorShrinksWithTolerance) {
  const Builtin mix;
  const Vec2 start{{0.2, 0.05}};
  const Vec2 reference = reference_endpoint(mix, ScheduleKind::linear, 0.999, start);
  double previous = std::numeric_limits<double>::infinity();
  for (double rtol : {1e-4, 1e-6, 1e-8, 1e-10}) {
    SCOPED_TRACE(rtol);
    FlowProblem<double> problem = problem_for(ScheduleKind::linear, Method::dopri5, 0.999);
    problem.control.rtol = rtol;
    problem.control.atol = rtol * 1e-2;
    const double error = distance(integrate(mix, problem, start), reference);
    EXPECT_LT(error, previous);
    EXPECT_LT(error, 100 * rtol);
    previous = error;
  }
}

/// Wraps the flow field and records the largest time it was evaluated at.
struct RecordingField {
  FlowField<double> inner;
  double* max_time;
  int* calls;
  template <class VI, class VO>
  void operator()(double t, const VI& x, VO& v) const {
    *max_time = std::max(*max_time, t);
    ++*calls;
    inner(t, x, v);
  }
};

/// Records the times of accepted steps.
struct TimeObserver {
  std::vector<double> times;
  template <class T, class V>
  void on_start(T t, const V&) { times.push_back(t); }
  template <class T, class V>
  void on_fixed_step(T, T t1, const V&) { times.push_back(t1); }
  template <class T, class V, class W>
  void on_dopri5_step(T t0, T h, const V&, const W&) { times.push_back(t0 + h); }
};

TEST(Dopri5, LandsOnEndWithoutPassingIt) {
  const Builtin mix;
  for (double t_end : {0.999, 1.0 - 1e-6, 0.5 + 1e-9, 1.0 - 1e-12}) {
    SCOPED_TRACE(t_end);
    double max_time = 0;
    int calls = 0;
    const RecordingField field{{mix.view(), ScheduleKind::cosine}, &max_time, &calls};
    StepControl<double> control;
    control.rtol = 1e-7;
    control.atol = 1e-9;
    Vec2 x{{1.3, -0.2}};
    Workspace<Vec2> ws{};
    const SampleCounters counters = integrate_dopri5(field, x, ws, t_end, control);
    EXPECT_EQ(counters.status, SampleStatus::ok);
    EXPECT_LE(max_time, t_end);
    EXPECT_EQ(static_cast<int>(counters.evaluations), calls);
    EXPECT_TRUE(std::isfinite(x[0]));
    EXPECT_TRUE(std::isfinite(x[1]));
  }
}

TEST(FixedStep, LastStepLandsOnEnd) {
  const Builtin mix;
  for (Method method : {Method::euler, Method::heun, Method::rk4}) {
    SCOPED_TRACE(static_cast<int>(method));
    double max_time = 0;
    int calls = 0;
    const RecordingField field{{mix.view(), ScheduleKind::linear}, &max_time, &calls};
    TimeObserver observer;
    Vec2 x{{0.4, 0.4}};
    Workspace<Vec2> ws{};
    const double t_end = 0.9990000000000001;
    integrate_fixed(method, field, x, ws, t_end, 7, observer);
    EXPECT_EQ(observer.times.back(), t_end);
    EXPECT_LE(max_time, t_end);
  }
}

/// A field that is zero everywhere: every error estimate is exactly 0.
struct ZeroField {
  template <class VI, class VO>
  void operator()(double, const VI& x, VO& v) const {
    for (int j = 0; j < x.size(); ++j) v[j] = 0.0;
  }
};

TEST(Dopri5, ZeroErrorEstimateGrowsStepBoundedly) {
  StepControl<double> control;
  control.initial_step = 1e-6;
  Vec2 x{{1.0, 2.0}};
  Workspace<Vec2> ws{};
  TimeObserver observer;
  const SampleCounters counters =
      integrate_dopri5(ZeroField{}, x, ws, 0.999, control, observer);
  EXPECT_EQ(counters.status, SampleStatus::ok);
  // Growth by at most max_factor = 10 per step: from 1e-6 to ~1 takes 6 steps.
  EXPECT_GE(counters.accepted, 6u);
  EXPECT_LE(counters.accepted, 8u);
  EXPECT_EQ(observer.times.back(), 0.999);
  for (std::size_t i = 1; i < observer.times.size(); ++i) {
    EXPECT_TRUE(std::isfinite(observer.times[i]));
  }
}

TEST(Dopri5, StopsAtMaxSteps) {
  const Builtin mix;
  FlowProblem<double> problem = problem_for(ScheduleKind::linear, Method::dopri5, 0.999);
  problem.control.max_steps = 3;
  SampleCounters counters;
  integrate(mix, problem, Vec2{{0.1, 0.1}}, &counters);
  EXPECT_EQ(counters.status, SampleStatus::max_steps_reached);
  EXPECT_EQ(counters.accepted + counters.rejected, 3u);
}

/// A field that returns NaN everywhere.
struct NanField {
  template <class VI, class VO>
  void operator()(double, const VI& x, VO& v) const {
    for (int j = 0; j < x.size(); ++j) v[j] = std::numeric_limits<double>::quiet_NaN();
  }
};

/// A field that returns NaN once t passes 0.5.
struct LateNanField {
  template <class VI, class VO>
  void operator()(double t, const VI& x, VO& v) const {
    for (int j = 0; j < x.size(); ++j) {
      v[j] = t > 0.5 ? std::numeric_limits<double>::quiet_NaN() : 1.0;
    }
  }
};

TEST(Dopri5, NonFiniteFieldEndsWithStatus) {
  StepControl<double> control;
  for (int variant = 0; variant < 2; ++variant) {
    SCOPED_TRACE(variant);
    Vec2 x{{1.0, 2.0}};
    Workspace<Vec2> ws{};
    const SampleCounters counters =
        variant == 0 ? integrate_dopri5(NanField{}, x, ws, 0.999, control)
                     : integrate_dopri5(LateNanField{}, x, ws, 0.999, control);
    EXPECT_EQ(counters.status, SampleStatus::non_finite_state);
  }
}

// A non-finite second velocity used to give a first step of 0, which never
// advances; the trial step is kept instead.
TEST(Dopri5, NonFiniteSecondVelocityKeepsTrialStep) {
  const StepControl<double> control;
  const Vec2 x{0.5, -0.25};
  const Vec2 k1{1.0, 2.0};
  const Vec2 k2{std::numeric_limits<double>::infinity(), 0.0};
  const double h0 = 1e-3;

  const double h = dopri5_first_step_from_trial(x, k1, k2, h0, 1.0, control);

  EXPECT_EQ(h, h0);
}

TEST(Dopri5, FirstStepStaysWithinLimit) {
  StepControl<double> control;
  control.max_first_step = 1e-7;
  const Vec2 x{0.5, -0.25};
  const Vec2 k1{1e-3, 2e-3};
  const Vec2 k2{1e-3, 2e-3};
  double d1 = 0.0;

  const double h0 = dopri5_trial_step(x, k1, 0.999, control, d1);
  const double h = dopri5_first_step_from_trial(x, k1, k2, h0, d1, control);

  EXPECT_LE(h0, 1e-7);
  EXPECT_LE(h, 1e-7);
}

TEST(FixedStep, NonFiniteFieldEndsWithStatus) {
  Vec2 x{{1.0, 2.0}};
  Workspace<Vec2> ws{};
  const SampleCounters counters =
      integrate_fixed(Method::rk4, LateNanField{}, x, ws, 0.999, 10);
  EXPECT_EQ(counters.status, SampleStatus::non_finite_state);
  EXPECT_EQ(counters.accepted, 5u);
}

TEST(ScheduleInvariance, SameAtomUnderEverySchedule) {
  const Builtin mix;
  for (std::uint64_t i = 0; i < 500; ++i) {
    Vec2 start{};
    philox_base_sample(7, i, start);
    int labels[3];
    int s = 0;
    for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::variance_preserving,
                              ScheduleKind::cosine}) {
      FlowProblem<double> problem = problem_for(kind, Method::dopri5, 0.999);
      problem.control.rtol = 1e-8;
      problem.control.atol = 1e-10;
      SampleCounters counters;
      const Vec2 end = integrate(mix, problem, start, &counters);
      labels[s++] = endpoint_label(mix.view(), endpoint_scale(problem), counters, end);
    }
    ASSERT_EQ(labels[0], labels[1]) << "sample " << i;
    ASSERT_EQ(labels[0], labels[2]) << "sample " << i;
  }
}

TEST(ScheduleInvariance, ScaledStatesAgreeAtEqualRatio) {
  // With y = x / a and r = b / a the flow is schedule-free, so x / a must
  // agree where b / a = 3: linear t = 3/4, variance-preserving
  // t = (2 / pi) atan 3, cosine t = (2 / pi) atan sqrt 3 = 2/3.
  const Builtin mix;
  const struct {
    ScheduleKind kind;
    double t;
  } cases[] = {{ScheduleKind::linear, 0.75},
               {ScheduleKind::variance_preserving, 2.0 / M_PI * std::atan(3.0)},
               {ScheduleKind::cosine, 2.0 / 3.0}};
  const Vec2 start{{0.25, -0.6}};
  Vec2 scaled[3];
  for (int c = 0; c < 3; ++c) {
    const Vec2 end = reference_endpoint(mix, cases[c].kind, cases[c].t, start);
    const auto s = evaluate_schedule(cases[c].kind, cases[c].t);
    ASSERT_NEAR(s.b / s.a, 3.0, 1e-12);
    scaled[c] = Vec2{{end[0] / s.a, end[1] / s.a}};
  }
  EXPECT_LT(distance(scaled[0], scaled[1]), 1e-9);
  EXPECT_LT(distance(scaled[0], scaled[2]), 1e-9);
}

TEST(Dopri5, FloatPrecisionReachesSameAtom) {
  const Builtin mix;
  const std::vector<float> atoms(mix.atoms.begin(), mix.atoms.end());
  const std::vector<float> log_w(mix.log_weights.begin(), mix.log_weights.end());
  const MixtureView<float> view{atoms.data(), log_w.data(), 3, 2};
  FlowProblem<float> problem;
  problem.t_end = 0.999f;
  problem.control.rtol = 1e-5f;
  problem.control.atol = 1e-6f;
  int agree = 0;
  for (std::uint64_t i = 0; i < 200; ++i) {
    LocalVec<float, 2> xf{};
    Vec2 xd{};
    philox_base_sample(3, i, xf);
    philox_base_sample(3, i, xd);
    Workspace<LocalVec<float, 2>> ws{};
    const SampleCounters counters = integrate_sample(view, problem, xf, ws);
    ASSERT_EQ(counters.status, SampleStatus::ok);
    const Vec2 end = reference_endpoint(mix, ScheduleKind::linear, 0.999, xd);
    SampleCounters ok;
    agree += endpoint_label(view, endpoint_scale(problem), counters, xf) ==
             endpoint_label(mix.view(), 0.999, ok, end);
  }
  EXPECT_EQ(agree, 200);
}

}  // namespace
}  // namespace fmg
