#include "host/ot/transport_map.hpp"

#include <omp.h>

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "host/errors.hpp"
#include "host/ot/laguerre2d.hpp"

namespace fmg {
namespace {

PointMatrix example_atoms() {
  PointMatrix atoms(3, 2);
  atoms << 2.4, 0.0, -1.4, 2.0, -1.4, -2.0;
  return atoms;
}

Eigen::VectorXd example_psi() {
  Eigen::VectorXd psi(3);
  psi << 0.0, -0.7875089379, -1.181375982;
  return psi;
}

PointMatrix grid_points() {
  PointMatrix points(21 * 21, 2);
  for (int i = 0; i < 21; ++i) {
    for (int j = 0; j < 21; ++j) {
      points.row(i * 21 + j) << -5.0 + 0.5 * i + 0.013, -5.0 + 0.5 * j;
    }
  }
  return points;
}

int brute_force_label(const PointMatrix& atoms, const Eigen::VectorXd& psi,
                      const Eigen::RowVectorXd& x) {
  int best = 0;
  double best_cost = std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < atoms.rows(); ++k) {
    const double cost = 0.5 * (x - atoms.row(k)).squaredNorm() - psi(k);
    if (cost < best_cost) {
      best_cost = cost;
      best = static_cast<int>(k);
    }
  }
  return best;
}

TEST(LaguerreLabels, MatchBruteForce) {
  const PointMatrix points = grid_points();
  const std::vector<int> labels =
      laguerre_labels(points, example_atoms(), example_psi());
  ASSERT_EQ(labels.size(), static_cast<std::size_t>(points.rows()));
  int per_cell[3] = {0, 0, 0};
  for (Eigen::Index i = 0; i < points.rows(); ++i) {
    SCOPED_TRACE(::testing::Message() << "point " << points.row(i));
    EXPECT_EQ(labels[i],
              brute_force_label(example_atoms(), example_psi(), points.row(i)));
    ++per_cell[labels[i]];
  }
  for (const int count : per_cell) EXPECT_GT(count, 0);
}

TEST(LaguerreLabels, SkipExcludedAtoms) {
  Eigen::VectorXd psi = example_psi();
  psi(0) = -std::numeric_limits<double>::infinity();
  const std::vector<int> labels =
      laguerre_labels(grid_points(), example_atoms(), psi);
  for (const int label : labels) EXPECT_NE(label, 0);
}

TEST(LaguerreLabels, EmptyPointsGiveEmptyLabels) {
  const PointMatrix points(0, 2);
  EXPECT_TRUE(laguerre_labels(points, example_atoms(), example_psi()).empty());
}

TEST(LaguerreLabels, RejectsWrongDimension) {
  const PointMatrix points = PointMatrix::Zero(4, 3);
  EXPECT_THROW(laguerre_labels(points, example_atoms(), example_psi()),
               InvalidArgument);
}

TEST(OtTrajectories, RunStraightFromPointToAtom) {
  const PointMatrix points = grid_points();
  const std::vector<double> times = {0.0, 0.25, 1.0};
  const PointMatrix paths =
      ot_trajectories(points, example_atoms(), example_psi(), times);
  const std::vector<int> labels =
      laguerre_labels(points, example_atoms(), example_psi());
  const Eigen::Index n = points.rows();
  ASSERT_EQ(paths.rows(), 3 * n);
  for (Eigen::Index i = 0; i < n; ++i) {
    SCOPED_TRACE(::testing::Message() << "point " << i);
    const Eigen::RowVectorXd atom = example_atoms().row(labels[i]);
    EXPECT_EQ(paths.row(i), points.row(i));
    EXPECT_NEAR((paths.row(n + i) - (0.75 * points.row(i) + 0.25 * atom)).norm(),
                0.0, 1e-15);
    EXPECT_EQ(paths.row(2 * n + i), atom);
  }
}

TEST(OtTrajectories, RejectTimesOutsideUnitInterval) {
  const std::vector<double> times = {0.0, 1.5};
  try {
    ot_trajectories(grid_points(), example_atoms(), example_psi(), times);
    FAIL() << "time 1.5 was accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("times[1] = 1.5"),
              std::string::npos)
        << error.what();
  }
}

TEST(TransportCost, MonteCarloMatchesExact) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd psi = example_psi();
  const TransportCostEstimate estimate =
      estimate_transport_cost(atoms, psi, 200'000, 7);
  const double exact = exact_transport_cost_2d(atoms, psi);
  EXPECT_GT(estimate.standard_error, 0.0);
  EXPECT_NEAR(estimate.value, exact, 4.0 * estimate.standard_error);
}

TEST(TransportCost, IndependentOfThreadCount) {
  const int previous = omp_get_max_threads();
  omp_set_num_threads(1);
  const TransportCostEstimate single_thread =
      estimate_transport_cost(example_atoms(), example_psi(), 30'001, 3);
  omp_set_num_threads(2);
  const TransportCostEstimate two_threads =
      estimate_transport_cost(example_atoms(), example_psi(), 30'001, 3);
  omp_set_num_threads(previous);
  EXPECT_EQ(single_thread.value, two_threads.value);
  EXPECT_EQ(single_thread.standard_error, two_threads.standard_error);
}

TEST(TransportCost, RejectsZeroSamples) {
  EXPECT_THROW(estimate_transport_cost(example_atoms(), example_psi(), 0, 1),
               InvalidArgument);
}

}  // namespace
}  // namespace fmg
