#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "host/analysis/density.hpp"
#include "host/errors.hpp"
#include "kernels/common.hpp"
#include "kernels/mixture.hpp"
#include "kernels/schedule.hpp"

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

/// The built-in three-atom example.
class LogDensityGrid : public ::testing::Test {
 protected:
  MixtureView<double> mixture() const {
    return {atoms_.data(), log_weights_.data(), 3, 2};
  }

  const std::vector<double> atoms_ = {2.4, 0.0, -1.4, 2.0, -1.4, -2.0};
  const std::vector<double> log_weights_ = {std::log(0.45), std::log(0.30),
                                            std::log(0.25)};
};

// The trapezoid rule on an infinite grid of spacing h integrates a Gaussian
// of standard deviation sigma with relative error about
// 2 exp(-2 pi^2 sigma^2 / h^2) per axis (Poisson summation), 1e-19 for
// h = sigma / 1.5. On [-10, 10]^2 the atoms b mu_k lie within 2.5 of the
// origin and sigma = a <= 1, so the truncated tails weigh below
// exp(-7.5^2 / 2) = 6e-13. The remaining error is the rounding of a sum of
// up to 2e6 terms, below 1e-12 in double; 1e-10 leaves room for both.
TEST_F(LogDensityGrid, IntegratesToOne) {
  const double bound = 10.0;
  for (ScheduleKind kind : all_schedules) {
    for (double t : {0.15, 0.5, 0.9}) {
      SCOPED_TRACE(std::string(schedule_label(kind)) +
                   ", t = " + std::to_string(t));
      const double a = evaluate_schedule(kind, t).a;
      const double spacing = std::min(0.1, a / 1.5);
      const int n = static_cast<int>(std::ceil(2.0 * bound / spacing)) + 1;
      const double h = 2.0 * bound / (n - 1);

      const std::vector<double> log_rho = log_density_grid(
          mixture(), kind, t, -bound, bound, n, -bound, bound, n);

      double integral = 0.0;
      for (int iy = 0; iy < n; ++iy) {
        const double wy = (iy == 0 || iy == n - 1) ? 0.5 : 1.0;
        double row = 0.0;
        for (int ix = 0; ix < n; ++ix) {
          const double wx = (ix == 0 || ix == n - 1) ? 0.5 : 1.0;
          row += wx * std::exp(log_rho[static_cast<std::size_t>(iy) * n + ix]);
        }
        integral += wy * row;
      }
      integral *= h * h;
      EXPECT_NEAR(integral, 1.0, 1e-10);
    }
  }
}

TEST_F(LogDensityGrid, StandardNormalAtTimeZero) {
  const int nx = 41;
  const int ny = 31;
  const std::vector<double> log_rho = log_density_grid(
      mixture(), ScheduleKind::cosine, 0.0, -4.0, 4.0, nx, -3.0, 3.0, ny);

  for (int iy = 0; iy < ny; ++iy) {
    for (int ix = 0; ix < nx; ++ix) {
      const double x = -4.0 + 8.0 * ix / (nx - 1);
      const double y = -3.0 + 6.0 * iy / (ny - 1);
      const double expected = -0.5 * (x * x + y * y) - std::log(2.0 * math::pi<double>());
      SCOPED_TRACE("x = " + std::to_string(x) + ", y = " + std::to_string(y));
      EXPECT_NEAR(log_rho[static_cast<std::size_t>(iy) * nx + ix], expected,
                  1e-14 * std::max(1.0, std::fabs(expected)));
    }
  }
}

TEST_F(LogDensityGrid, FiniteNearTimeOne) {
  const double t = 1.0 - 1e-9;
  for (ScheduleKind kind : all_schedules) {
    SCOPED_TRACE(schedule_label(kind));

    // Spacing 0.05 puts node (148, 100) on the atom (2.4, 0), up to the
    // rounding of the grid coordinate.
    const std::vector<double> log_rho = log_density_grid(
        mixture(), kind, t, -5.0, 5.0, 201, -5.0, 5.0, 201);

    const auto non_finite = std::count_if(
        log_rho.begin(), log_rho.end(),
        [](double value) { return !std::isfinite(value); });
    EXPECT_EQ(non_finite, 0);
    const std::size_t at_atom = 100 * 201 + 148;
    EXPECT_GT(log_rho[at_atom], log_rho[at_atom - 1]);
    EXPECT_GT(log_rho[at_atom], log_rho[at_atom + 1]);
  }
}

TEST_F(LogDensityGrid, RowMajorWithYOuter) {
  const int nx = 7;
  const int ny = 4;
  const double t = 0.4;

  const std::vector<double> grid = log_density_grid(
      mixture(), ScheduleKind::linear, t, -3.0, 2.0, nx, -1.0, 5.0, ny);

  std::vector<double> points;
  for (int iy = 0; iy < ny; ++iy) {
    for (int ix = 0; ix < nx; ++ix) {
      points.push_back(-3.0 + 5.0 * ix / (nx - 1));
      points.push_back(-1.0 + 6.0 * iy / (ny - 1));
    }
  }
  const std::vector<double> direct = log_density_points(
      mixture(), ScheduleKind::linear, t, points.data(), nx * ny);
  ASSERT_EQ(grid.size(), direct.size());
  for (std::size_t i = 0; i < grid.size(); ++i) {
    SCOPED_TRACE("entry " + std::to_string(i));
    EXPECT_NEAR(grid[i], direct[i], 1e-13 * std::fabs(direct[i]));
  }
}

TEST_F(LogDensityGrid, RejectsTimeOne) {
  try {
    log_density_grid(mixture(), ScheduleKind::linear, 1.0, -1.0, 1.0, 3, -1.0,
                     1.0, 3);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("t = 1"), std::string::npos);
  }
}

TEST_F(LogDensityGrid, RejectsNegativeTime) {
  EXPECT_THROW(log_density_grid(mixture(), ScheduleKind::linear, -0.1, -1.0,
                                1.0, 3, -1.0, 1.0, 3),
               InvalidArgument);
}

TEST_F(LogDensityGrid, RejectsNanTime) {
  EXPECT_THROW(log_density_grid(mixture(), ScheduleKind::linear, NAN, -1.0,
                                1.0, 3, -1.0, 1.0, 3),
               InvalidArgument);
}

TEST_F(LogDensityGrid, RejectsSingleColumn) {
  EXPECT_THROW(log_density_grid(mixture(), ScheduleKind::linear, 0.5, -1.0,
                                1.0, 1, -1.0, 1.0, 3),
               InvalidArgument);
}

TEST_F(LogDensityGrid, RejectsSingleRow) {
  EXPECT_THROW(log_density_grid(mixture(), ScheduleKind::linear, 0.5, -1.0,
                                1.0, 3, -1.0, 1.0, 1),
               InvalidArgument);
}

TEST_F(LogDensityGrid, RejectsReversedBounds) {
  EXPECT_THROW(log_density_grid(mixture(), ScheduleKind::linear, 0.5, 1.0,
                                -1.0, 3, -1.0, 1.0, 3),
               InvalidArgument);
}

TEST_F(LogDensityGrid, RejectsEqualBounds) {
  EXPECT_THROW(log_density_grid(mixture(), ScheduleKind::linear, 0.5, -1.0,
                                1.0, 3, 2.0, 2.0, 3),
               InvalidArgument);
}

TEST_F(LogDensityGrid, RejectsInfiniteBound) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_THROW(log_density_grid(mixture(), ScheduleKind::linear, 0.5, -inf,
                                1.0, 3, -1.0, 1.0, 3),
               InvalidArgument);
}

TEST_F(LogDensityGrid, RejectsDimensionThree) {
  const std::vector<double> atoms = {0.0, 0.0, 0.0};
  const std::vector<double> log_weights = {0.0};
  const MixtureView<double> mix{atoms.data(), log_weights.data(), 1, 3};

  EXPECT_THROW(log_density_grid(mix, ScheduleKind::linear, 0.5, -1.0, 1.0, 3,
                                -1.0, 1.0, 3),
               InvalidArgument);
}

/// log rho_t by the plain sum of Gaussian densities, for moderate t and d.
double direct_log_density(const std::vector<double>& atoms,
                          const std::vector<double>& weights, int d,
                          ScheduleKind kind, double t, const double* x) {
  const ScheduleValues<double> s = evaluate_schedule(kind, t);
  double density = 0.0;
  for (std::size_t k = 0; k < weights.size(); ++k) {
    double dist2 = 0.0;
    for (int j = 0; j < d; ++j) {
      const double diff = x[j] - s.b * atoms[k * d + j];
      dist2 += diff * diff;
    }
    density += weights[k] * std::exp(-dist2 / (2.0 * s.a * s.a)) /
               std::pow(2.0 * math::pi<double>() * s.a * s.a, 0.5 * d);
  }
  return std::log(density);
}

TEST(LogDensityPoints, MatchesDirectSumInDimensionFive) {
  const int d = 5;
  std::mt19937_64 engine(11);
  std::normal_distribution<double> normal;
  std::vector<double> atoms(3 * d);
  for (double& value : atoms) value = normal(engine);
  const std::vector<double> weights = {0.2, 0.5, 0.3};
  const std::vector<double> log_weights = {std::log(0.2), std::log(0.5),
                                           std::log(0.3)};
  const MixtureView<double> mix{atoms.data(), log_weights.data(), 3, d};
  const std::size_t n = 50;
  std::vector<double> points(n * d);
  for (double& value : points) value = normal(engine);

  for (ScheduleKind kind : all_schedules) {
    for (double t : {0.0, 0.3, 0.7}) {
      SCOPED_TRACE(std::string(schedule_label(kind)) +
                   ", t = " + std::to_string(t));

      const std::vector<double> values =
          log_density_points(mix, kind, t, points.data(), n);

      ASSERT_EQ(values.size(), n);
      for (std::size_t i = 0; i < n; ++i) {
        SCOPED_TRACE("point " + std::to_string(i));
        const double expected =
            direct_log_density(atoms, weights, d, kind, t, &points[i * d]);
        EXPECT_NEAR(values[i], expected, 1e-12 * std::fabs(expected));
      }
    }
  }
}

TEST(LogDensityPoints, EmptyInputGivesEmptyOutput) {
  const std::vector<double> atoms = {1.0, -1.0};
  const std::vector<double> log_weights = {0.0};
  const MixtureView<double> mix{atoms.data(), log_weights.data(), 1, 2};

  const std::vector<double> values =
      log_density_points(mix, ScheduleKind::linear, 0.5, nullptr, 0);

  EXPECT_TRUE(values.empty());
}

TEST(LogDensityPoints, RejectsNullPoints) {
  const std::vector<double> atoms = {1.0, -1.0};
  const std::vector<double> log_weights = {0.0};
  const MixtureView<double> mix{atoms.data(), log_weights.data(), 1, 2};

  EXPECT_THROW(log_density_points(mix, ScheduleKind::linear, 0.5, nullptr, 4),
               InvalidArgument);
}

TEST(LogDensityPoints, RejectsTimeOne) {
  const std::vector<double> atoms = {1.0, -1.0};
  const std::vector<double> log_weights = {0.0};
  const MixtureView<double> mix{atoms.data(), log_weights.data(), 1, 2};
  const std::vector<double> points = {0.0, 0.0};

  EXPECT_THROW(
      log_density_points(mix, ScheduleKind::linear, 1.0, points.data(), 1),
      InvalidArgument);
}

TEST(LogDensityPoints, RejectsAllZeroWeights) {
  const std::vector<double> atoms = {1.0, -1.0};
  const std::vector<double> log_weights = {
      -std::numeric_limits<double>::infinity()};
  const MixtureView<double> mix{atoms.data(), log_weights.data(), 1, 2};
  const std::vector<double> points = {0.0, 0.0};

  EXPECT_THROW(
      log_density_points(mix, ScheduleKind::linear, 0.5, points.data(), 1),
      InvalidArgument);
}

}  // namespace
}  // namespace fmg
