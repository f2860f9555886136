#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "host/analysis/crosscheck.hpp"
#include "host/errors.hpp"
#include "kernels/common.hpp"
#include "kernels/mixture.hpp"

namespace fmg {
namespace {

const ScheduleKind all_schedules[] = {ScheduleKind::linear,
                                      ScheduleKind::variance_preserving,
                                      ScheduleKind::cosine};

const char* schedule_label(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::linear:
      return "linear";
    case ScheduleKind::variance_preserving:
      return "variance_preserving";
    case ScheduleKind::cosine:
      return "cosine";
  }
  return "unknown";
}

/// The built-in three-atom example and 200 fixed N(0, I) points.
class VelocityCrosscheck : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 engine(20260617);
    std::normal_distribution<double> normal;
    points_.resize(2 * num_points_);
    for (double& value : points_) value = normal(engine);
    points_float_.assign(points_.begin(), points_.end());
  }

  MixtureView<double> mixture() const {
    return {atoms_.data(), log_weights_.data(), 3, 2};
  }
  MixtureView<float> mixture_float() const {
    return {atoms_float_.data(), log_weights_float_.data(), 3, 2};
  }

  const std::size_t num_points_ = 200;
  const std::vector<double> atoms_ = {2.4, 0.0, -1.4, 2.0, -1.4, -2.0};
  const std::vector<double> log_weights_ = {std::log(0.45), std::log(0.30),
                                            std::log(0.25)};
  const std::vector<float> atoms_float_{atoms_.begin(), atoms_.end()};
  const std::vector<float> log_weights_float_{log_weights_.begin(),
                                              log_weights_.end()};
  std::vector<double> points_;
  std::vector<float> points_float_;
};

std::vector<double> evenly_spaced(double first, double last, int count) {
  std::vector<double> values(count);
  for (int i = 0; i < count; ++i) {
    values[i] = first + (last - first) * i / (count - 1);
  }
  return values;
}

// Measured with GCC 12 at -O2: max abs error 1e-13 and max relative error
// 6e-13 over these times, the largest at t = 0.05 where the rebuilt m
// loses digits like u / b.
TEST_F(VelocityCrosscheck, AgreesUpToTimeNineTenths) {
  const std::vector<double> times = evenly_spaced(0.05, 0.9, 18);
  for (ScheduleKind kind : all_schedules) {
    SCOPED_TRACE(schedule_label(kind));

    const CrosscheckCurve curve = velocity_crosscheck(
        mixture(), kind, points_.data(), num_points_, times);

    ASSERT_EQ(curve.times, times);
    for (std::size_t i = 0; i < times.size(); ++i) {
      SCOPED_TRACE("t = " + std::to_string(times[i]));
      EXPECT_LT(curve.max_abs_error[i], 1e-10);
      EXPECT_LT(curve.max_rel_error[i], 1e-11);
    }
  }
}

TEST_F(VelocityCrosscheck, ErrorGrowsTowardOne) {
  const std::vector<double> times = {0.5, 0.9, 0.99, 0.999, 0.9999};
  for (ScheduleKind kind : all_schedules) {
    SCOPED_TRACE(schedule_label(kind));

    const CrosscheckCurve curve = velocity_crosscheck(
        mixture(), kind, points_.data(), num_points_, times);

    // Reported so that the loss of digits near t = 1 stays visible.
    for (std::size_t i = 0; i < times.size(); ++i) {
      std::printf("[ curve    ] %-19s t = %-7g max abs %.2e, max rel %.2e\n",
                  schedule_label(kind), times[i], curve.max_abs_error[i],
                  curve.max_rel_error[i]);
    }
    EXPECT_GT(curve.max_abs_error[3], curve.max_abs_error[0]);
    EXPECT_GT(curve.max_abs_error[4], 10.0 * curve.max_abs_error[0]);
    EXPECT_TRUE(std::isfinite(curve.max_abs_error[4]));
  }
}

// Measured with GCC 12 at -O2: max abs error 2.3e-5 over these times; the
// relative error reaches 5e-4 at t = 0.05 (variance-preserving, b = 0.08).
TEST_F(VelocityCrosscheck, FloatAgreesToSinglePrecision) {
  const std::vector<double> times = evenly_spaced(0.05, 0.9, 18);
  for (ScheduleKind kind : all_schedules) {
    SCOPED_TRACE(schedule_label(kind));

    const CrosscheckCurve curve = velocity_crosscheck(
        mixture_float(), kind, points_float_.data(), num_points_, times);

    for (std::size_t i = 0; i < times.size(); ++i) {
      SCOPED_TRACE("t = " + std::to_string(times[i]));
      EXPECT_LT(curve.max_abs_error[i], 1e-3);
      // Float rounding shows: the two routes never agree exactly on all
      // 200 points.
      EXPECT_GT(curve.max_abs_error[i], 0.0);
    }
  }
}

TEST_F(VelocityCrosscheck, RejectsTimeZero) {
  const std::vector<double> times = {0.0, 0.5};

  try {
    velocity_crosscheck(mixture(), ScheduleKind::linear, points_.data(),
                        num_points_, times);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("t = 0"), std::string::npos);
  }
}

TEST_F(VelocityCrosscheck, RejectsTimeOne) {
  const std::vector<double> times = {0.5, 1.0};

  EXPECT_THROW(velocity_crosscheck(mixture(), ScheduleKind::linear,
                                   points_.data(), num_points_, times),
               InvalidArgument);
}

TEST_F(VelocityCrosscheck, RejectsTimeRoundingToOneInFloat) {
  const std::vector<double> times = {1.0 - 1e-9};

  EXPECT_THROW(velocity_crosscheck(mixture_float(), ScheduleKind::linear,
                                   points_float_.data(), num_points_, times),
               InvalidArgument);
}

TEST_F(VelocityCrosscheck, RejectsNoPoints) {
  const std::vector<double> times = {0.5};

  EXPECT_THROW(velocity_crosscheck(mixture(), ScheduleKind::linear,
                                   points_.data(), 0, times),
               InvalidArgument);
}

TEST_F(VelocityCrosscheck, RejectsEmptyTimes) {
  const std::vector<double> times;

  EXPECT_THROW(velocity_crosscheck(mixture(), ScheduleKind::linear,
                                   points_.data(), num_points_, times),
               InvalidArgument);
}

TEST_F(VelocityCrosscheck, RejectsNanLogWeight) {
  const std::vector<double> log_weights = {std::log(0.5), NAN, std::log(0.5)};
  const MixtureView<double> mix{atoms_.data(), log_weights.data(), 3, 2};
  const std::vector<double> times = {0.5};

  EXPECT_THROW(velocity_crosscheck(mix, ScheduleKind::linear, points_.data(),
                                   num_points_, times),
               InvalidArgument);
}

TEST(VelocityCrosscheckHighDimension, AgreesInDimensionFifty) {
  const int d = 50;
  const int num_atoms = 4;
  std::mt19937_64 engine(7);
  std::normal_distribution<double> normal;
  std::vector<double> atoms(num_atoms * d);
  for (double& value : atoms) value = 2.0 * normal(engine);
  const std::vector<double> log_weights(num_atoms, std::log(0.25));
  std::vector<double> points(10 * d);
  for (double& value : points) value = normal(engine);
  const MixtureView<double> mix{atoms.data(), log_weights.data(), num_atoms, d};
  const std::vector<double> times = {0.3, 0.6, 0.9};

  const CrosscheckCurve curve = velocity_crosscheck(
      mix, ScheduleKind::variance_preserving, points.data(), 10, times);

  for (std::size_t i = 0; i < times.size(); ++i) {
    SCOPED_TRACE("t = " + std::to_string(times[i]));
    EXPECT_LT(curve.max_rel_error[i], 1e-12);
  }
}

}  // namespace
}  // namespace fmg
