// Schedules, the counter-based base sampler and the per-sample velocity.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/mixture.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/schedule.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

const ScheduleKind all_schedules[] = {ScheduleKind::linear,
                                      ScheduleKind::variance_preserving,
                                      ScheduleKind::cosine};

TEST(Schedule, BoundaryValues) {
  for (ScheduleKind kind : all_schedules) {
    SCOPED_TRACE(static_cast<int>(kind));
    const auto start = evaluate_schedule(kind, 0.0);
    const auto end = evaluate_schedule(kind, 1.0);
    EXPECT_EQ(start.a, 1.0);
    EXPECT_EQ(start.b, 0.0);
    EXPECT_EQ(end.a, 0.0);
    EXPECT_NEAR(end.b, 1.0, 1e-15);
  }
}

TEST(Schedule, BoundaryCheckHoldsForEverySchedule) {
  for (ScheduleKind kind : all_schedules) {
    SCOPED_TRACE(static_cast<int>(kind));
    EXPECT_TRUE(schedule_boundary_holds(kind, 1e-15));
    EXPECT_TRUE(schedule_boundary_holds(kind, 1e-6f));
  }
  // A negative tolerance cannot hold, so the check can fail.
  EXPECT_FALSE(schedule_boundary_holds(ScheduleKind::cosine, -1.0));
}

TEST(Schedule, DerivativesMatchFiniteDifferences) {
  const double h = 1e-6;
  for (ScheduleKind kind : all_schedules) {
    for (double t : {0.1, 0.37, 0.5, 0.8, 0.95}) {
      SCOPED_TRACE(testing::Message() << static_cast<int>(kind) << " t=" << t);
      const auto v = evaluate_schedule(kind, t);
      const auto plus = evaluate_schedule(kind, t + h);
      const auto minus = evaluate_schedule(kind, t - h);
      EXPECT_NEAR(v.da, (plus.a - minus.a) / (2 * h), 1e-8);
      EXPECT_NEAR(v.db, (plus.b - minus.b) / (2 * h), 1e-8);
    }
  }
}

TEST(Schedule, CosineKeepsRelativeAccuracyNearOneInFloat) {
  // a = sin^2(pi s / 2) with s = 1e-5; the naive (1 + cos pi t) / 2 is 0 in
  // float here.
  const float t = 1.0f - 1e-5f;
  const double s = 1.0 - static_cast<double>(t);
  const double exact = std::pow(std::sin(M_PI * s / 2), 2);
  const auto v = evaluate_schedule(ScheduleKind::cosine, t);
  EXPECT_GT(v.a, 0.0f);
  EXPECT_NEAR(v.a / exact, 1.0, 1e-5);
}

TEST(Schedule, LogAMatchesLogOfA) {
  for (ScheduleKind kind : all_schedules) {
    for (double t : {0.0, 0.3, 0.9, 1.0 - 1e-12}) {
      SCOPED_TRACE(testing::Message() << static_cast<int>(kind) << " t=" << t);
      EXPECT_NEAR(log_schedule_a(kind, t),
                  std::log(evaluate_schedule(kind, t).a), 1e-12);
    }
  }
}

TEST(DeterministicMath, LogMatchesLibraryLog) {
  double worst = 0.0;
  for (int i = 1; i <= 100000; ++i) {
    const double u = std::pow(static_cast<double>(i) / 100001.0, 3.0);
    const double expected = std::log(u);
    worst = std::max(worst, std::fabs(detail::deterministic_log(u) - expected) /
                                std::fabs(expected == 0 ? 1.0 : expected));
  }
  EXPECT_LT(worst, 4e-16);
}

TEST(DeterministicMath, SinCosMatchLibrary) {
  double worst = 0.0;
  for (int i = 0; i < 100000; ++i) {
    const double u = static_cast<double>(i) / 100000.0;
    double s = 0, c = 0;
    detail::deterministic_sincos_2pi(u, &s, &c);
    worst = std::max(worst, std::fabs(s - std::sin(2 * M_PI * u)));
    worst = std::max(worst, std::fabs(c - std::cos(2 * M_PI * u)));
  }
  EXPECT_LT(worst, 2e-15);
}

TEST(PhiloxSampler, SameKeyGivesSameSample) {
  LocalVec<double, 5> first{}, second{};
  philox_base_sample(42, 123456789, first);
  philox_base_sample(42, 123456789, second);
  for (int j = 0; j < 5; ++j) EXPECT_EQ(first[j], second[j]);
}

TEST(PhiloxSampler, DifferentSeedsAndIndicesDiffer) {
  LocalVec<double, 2> a{}, b{}, c{};
  philox_base_sample(1, 7, a);
  philox_base_sample(2, 7, b);
  philox_base_sample(1, 8, c);
  EXPECT_NE(a[0], b[0]);
  EXPECT_NE(a[0], c[0]);
}

TEST(PhiloxSampler, FloatSampleIsRoundedDoubleSample) {
  LocalVec<double, 3> wide{};
  LocalVec<float, 3> narrow{};
  philox_base_sample(9, 99, wide);
  philox_base_sample(9, 99, narrow);
  for (int j = 0; j < 3; ++j) EXPECT_EQ(narrow[j], static_cast<float>(wide[j]));
}

TEST(PhiloxSampler, MomentsAreStandardNormal) {
  const int n = 200000;
  double sum = 0, sum2 = 0, sum4 = 0, cross = 0;
  for (int i = 0; i < n; ++i) {
    LocalVec<double, 2> x{};
    philox_base_sample(20260617, static_cast<std::uint64_t>(i), x);
    sum += x[0];
    sum2 += x[0] * x[0];
    sum4 += x[0] * x[0] * x[0] * x[0];
    cross += x[0] * x[1];
  }
  // Standard errors: mean 1/sqrt(n), variance sqrt(2/n), fourth moment
  // sqrt(96/n), product sqrt(1/n); 5 standard errors each.
  EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(sum2 / n, 1.0, 5 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 5 * std::sqrt(96.0 / n));
  EXPECT_NEAR(cross / n, 0.0, 5 / std::sqrt(n));
}

struct TestMixture {
  std::vector<double> atoms;
  std::vector<double> log_weights;
  int dim;
  MixtureView<double> view() const {
    return {atoms.data(), log_weights.data(),
            static_cast<int>(log_weights.size()), dim};
  }
};

TestMixture builtin() {
  return {{2.4, 0.0, -1.4, 2.0, -1.4, -2.0},
          {std::log(0.45), std::log(0.30), std::log(0.25)},
          2};
}

TEST(Velocity, SingleAtomHasClosedForm) {
  const TestMixture mix{{1.5, -0.5}, {0.0}, 2};
  for (ScheduleKind kind : all_schedules) {
    for (double t : {0.0, 0.4, 0.99, 1.0 - 1e-9}) {
      SCOPED_TRACE(testing::Message() << static_cast<int>(kind) << " t=" << t);
      LocalVec<double, 2> x{{0.3, 0.7}}, v{};
      velocity(mix.view(), kind, t, x, v);
      const auto s = evaluate_schedule(kind, t);
      for (int j = 0; j < 2; ++j) {
        const double mu = mix.atoms[j];
        const double expected = s.da * (x[j] - s.b * mu) / s.a + s.db * mu;
        EXPECT_NEAR(v[j], expected, 1e-12 * std::max(1.0, std::fabs(expected)));
      }
    }
  }
}

TEST(Velocity, FiniteNearOneAndForFarAtoms) {
  const TestMixture far{{0.0, 0.0, 1000.0, 0.0}, {std::log(0.5), std::log(0.5)}, 2};
  for (ScheduleKind kind : all_schedules) {
    for (double t : {0.0, 0.5, 0.999999, 1.0 - 1e-12}) {
      SCOPED_TRACE(testing::Message() << static_cast<int>(kind) << " t=" << t);
      LocalVec<double, 2> x{{400.0, -3.0}}, v{};
      velocity(far.view(), kind, t, x, v);
      EXPECT_TRUE(std::isfinite(v[0]));
      EXPECT_TRUE(std::isfinite(v[1]));
      LocalVec<float, 2> xf{{400.0f, -3.0f}}, vf{};
      const std::vector<float> atoms_f(far.atoms.begin(), far.atoms.end());
      const std::vector<float> lw_f(far.log_weights.begin(), far.log_weights.end());
      const MixtureView<float> view_f{atoms_f.data(), lw_f.data(), 2, 2};
      velocity(view_f, kind, static_cast<float>(std::min(t, 0.99999)), xf, vf);
      EXPECT_TRUE(std::isfinite(vf[0]));
      EXPECT_TRUE(std::isfinite(vf[1]));
    }
  }
}

TEST(Velocity, HighDimensionStaysFinite) {
  const int d = 2048;
  TestMixture mix{std::vector<double>(2 * d), {std::log(0.3), std::log(0.7)}, d};
  std::vector<double> x(d), v(d), scratch(d);
  for (int j = 0; j < d; ++j) {
    mix.atoms[j] = std::cos(0.1 * j);
    mix.atoms[d + j] = -std::sin(0.3 * j);
    x[j] = 2.0 * std::sin(j + 1.0);
  }
  StridedVec<double> xv{x.data(), d, 1}, vv{v.data(), d, 1}, sv{scratch.data(), d, 1};
  for (double t : {0.1, 0.5, 0.99}) {
    SCOPED_TRACE(t);
    velocity(mix.view(), ScheduleKind::linear, t, xv, vv);
    for (int j = 0; j < d; ++j) ASSERT_TRUE(std::isfinite(v[j])) << j;
    const double log_rho = log_density(mix.view(), ScheduleKind::linear, t, xv, sv);
    EXPECT_TRUE(std::isfinite(log_rho));
    std::vector<double> gamma(2);
    log_responsibilities(mix.view(), ScheduleKind::linear, t, xv, gamma.data());
    EXPECT_NEAR(std::exp(gamma[0]) + std::exp(gamma[1]), 1.0, 1e-12);
  }
}

TEST(Velocity, ZeroWeightAtomIsIgnored) {
  const TestMixture with_zero{{2.4, 0.0, 0.0, 0.1},
                              {0.0, -std::numeric_limits<double>::infinity()},
                              2};
  LocalVec<double, 2> x{{0.0, 0.1}}, v{};
  velocity(with_zero.view(), ScheduleKind::linear, 0.9, x, v);
  // Only the first atom counts, so m = mu_0 exactly.
  const auto s = evaluate_schedule(ScheduleKind::linear, 0.9);
  EXPECT_NEAR(v[0], s.da * (0.0 - s.b * 2.4) / s.a + s.db * 2.4, 1e-12);
  double gamma[2];
  log_responsibilities(with_zero.view(), ScheduleKind::linear, 0.9, x, gamma);
  EXPECT_EQ(gamma[0], 0.0);
  EXPECT_EQ(gamma[1], -std::numeric_limits<double>::infinity());
}

TEST(LogDensity, AtTimeZeroIsStandardNormal) {
  const TestMixture mix = builtin();
  LocalVec<double, 2> x{{0.7, -1.2}}, scratch{};
  const double expected = -std::log(2 * M_PI) - 0.5 * (0.49 + 1.44);
  EXPECT_NEAR(log_density(mix.view(), ScheduleKind::cosine, 0.0, x, scratch),
              expected, 1e-14);
}

TEST(LaguerreCell, ZeroPotentialIsNearestAtom) {
  const TestMixture mix = builtin();
  LocalVec<double, 2> x{{2.0, 0.1}};
  EXPECT_EQ(laguerre_cell(mix.view(), static_cast<const double*>(nullptr), x), 0);
  const double psi[] = {0.0, 10.0, 0.0};
  EXPECT_EQ(laguerre_cell(mix.view(), psi, x), 1);
}

}  // namespace
}  // namespace fmg
