#include "host/ot/laguerre2d.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "host/errors.hpp"
#include "kernels/mixture.hpp"
#include "kernels/vec.hpp"

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

double laguerre_cost(const PointMatrix& atoms, const Eigen::VectorXd& psi,
                     Eigen::Index k, const Eigen::Vector2d& x) {
  return 0.5 * (x - atoms.row(k).transpose()).squaredNorm() - psi(k);
}

bool inside(const LabelledPolygon& cell, const Eigen::Vector2d& x) {
  const std::size_t n = cell.vertices.size();
  if (n < 3) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const Eigen::Vector2d edge = cell.vertices[(i + 1) % n] - cell.vertices[i];
    const Eigen::Vector2d offset = x - cell.vertices[i];
    if (edge.x() * offset.y() - edge.y() * offset.x() < 0.0) return false;
  }
  return true;
}

TEST(LaguerreCells2d, ContainTheirGridPoints) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd psi = example_psi();
  const std::vector<LabelledPolygon> cells = laguerre_cells_2d(atoms, psi);
  const MixtureView<double> mix{atoms.data(), nullptr, 3, 2};
  int checked = 0;
  for (double x = -4.05; x < 4.0; x += 0.1) {
    for (double y = -4.05; y < 4.0; y += 0.1) {
      const Eigen::Vector2d point(x, y);
      LocalVec<double, 2> v{{x, y}};
      const int label = laguerre_cell(mix, psi.data(), v);
      // Points within 1e-9 of a facet could go either way.
      double margin = std::numeric_limits<double>::infinity();
      for (Eigen::Index j = 0; j < 3; ++j) {
        if (j == label) continue;
        margin = std::min(margin, laguerre_cost(atoms, psi, j, point) -
                                      laguerre_cost(atoms, psi, label, point));
      }
      if (margin < 1e-9) continue;
      SCOPED_TRACE(::testing::Message() << "point " << point.transpose());
      for (Eigen::Index k = 0; k < 3; ++k) {
        EXPECT_EQ(inside(cells[k], point), k == label);
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 6000);
}

TEST(LaguerreCells2d, SharedEdgesLieOnFacets) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd psi = example_psi();
  const std::vector<LabelledPolygon> cells = laguerre_cells_2d(atoms, psi);
  int facet_edges = 0;
  for (Eigen::Index k = 0; k < 3; ++k) {
    const LabelledPolygon& cell = cells[k];
    for (std::size_t i = 0; i < cell.vertices.size(); ++i) {
      const int j = cell.labels[i];
      if (j < 0) continue;
      ++facet_edges;
      SCOPED_TRACE(::testing::Message() << "cell " << k << " edge " << i);
      for (const Eigen::Vector2d& end :
           {cell.vertices[i], cell.vertices[(i + 1) % cell.vertices.size()]}) {
        EXPECT_NEAR(laguerre_cost(atoms, psi, k, end),
                    laguerre_cost(atoms, psi, j, end), 1e-12);
      }
    }
  }
  // Three facets meeting at one point, each seen from both sides.
  EXPECT_EQ(facet_edges, 6);
}

TEST(ExactCellMeasures2d, MassesOfReferencePsiMatchWeights) {
  const CellMeasures measures =
      exact_cell_measures_2d(example_atoms(), example_psi());
  EXPECT_NEAR(measures.masses(0), 0.45, 1e-9);
  EXPECT_NEAR(measures.masses(1), 0.30, 1e-9);
  EXPECT_NEAR(measures.masses(2), 0.25, 1e-9);
  EXPECT_EQ(measures.samples, 0);
}

TEST(ExactCellMeasures2d, HessianMatchesFiniteDifferences) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd psi = example_psi();
  const CellMeasures measures = exact_cell_measures_2d(atoms, psi);
  const double h = 1e-5;
  for (Eigen::Index j = 0; j < 3; ++j) {
    Eigen::VectorXd up = psi;
    Eigen::VectorXd down = psi;
    up(j) += h;
    down(j) -= h;
    const Eigen::VectorXd derivative =
        (exact_cell_measures_2d(atoms, up).masses -
         exact_cell_measures_2d(atoms, down).masses) /
        (2.0 * h);
    for (Eigen::Index k = 0; k < 3; ++k) {
      SCOPED_TRACE(::testing::Message() << "entry (" << k << ", " << j << ")");
      EXPECT_NEAR(measures.hessian(k, j), derivative(k), 1e-8);
    }
  }
}

TEST(ExactCellMeasures2d, HessianIsSymmetricLaplacian) {
  const CellMeasures measures =
      exact_cell_measures_2d(example_atoms(), example_psi());
  for (Eigen::Index k = 0; k < 3; ++k) {
    SCOPED_TRACE(::testing::Message() << "row " << k);
    EXPECT_NEAR(measures.hessian.row(k).sum(), 0.0, 1e-15);
    EXPECT_GT(measures.hessian(k, k), 0.0);
    for (Eigen::Index j = 0; j < 3; ++j) {
      if (j == k) continue;
      EXPECT_LT(measures.hessian(k, j), 0.0);
      EXPECT_EQ(measures.hessian(k, j), measures.hessian(j, k));
    }
  }
}

TEST(ExactCellMeasures2d, ExcludedAtomHasEmptyCell) {
  Eigen::VectorXd psi = example_psi();
  psi(1) = -std::numeric_limits<double>::infinity();
  const CellMeasures measures = exact_cell_measures_2d(example_atoms(), psi);
  EXPECT_EQ(measures.masses(1), 0.0);
  EXPECT_EQ(measures.hessian(0, 1), 0.0);
  EXPECT_NEAR(measures.masses.sum(), 1.0, 1e-14);
}

TEST(ExactCellMeasures2d, SamePointGivesOneCell) {
  PointMatrix atoms(3, 2);
  atoms << 1.0, 0.0, -1.0, 0.5, 1.0, 0.0;
  const Eigen::VectorXd psi = Eigen::VectorXd::Zero(3);
  const CellMeasures measures = exact_cell_measures_2d(atoms, psi);
  EXPECT_GT(measures.masses(0), 0.0);
  EXPECT_EQ(measures.masses(2), 0.0);
  EXPECT_NEAR(measures.masses.sum(), 1.0, 1e-14);
}

TEST(ExactCellMeasures2d, RejectsInvalidArguments) {
  PointMatrix atoms3(2, 3);
  atoms3.setZero();
  EXPECT_THROW(exact_cell_measures_2d(atoms3, Eigen::VectorXd::Zero(2)),
               InvalidArgument);
  EXPECT_THROW(exact_cell_measures_2d(example_atoms(), Eigen::VectorXd::Zero(2)),
               InvalidArgument);
  Eigen::VectorXd psi = example_psi();
  psi(2) = std::nan("");
  try {
    exact_cell_measures_2d(example_atoms(), psi);
    FAIL() << "a NaN potential was accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("psi[2] = nan"), std::string::npos)
        << error.what();
  }
}

TEST(ExactTransportCost2d, SingleAtomAtOriginIsSecondMoment) {
  PointMatrix atoms(1, 2);
  atoms << 0.0, 0.0;
  // E|X|^2 = 2 for X ~ N(0, I_2).
  EXPECT_NEAR(exact_transport_cost_2d(atoms, Eigen::VectorXd::Zero(1)), 2.0,
              1e-14);
}

TEST(ExactTransportCost2d, SingleShiftedAtomAddsItsNorm) {
  PointMatrix atoms(1, 2);
  atoms << 3.0, -4.0;
  // E|X - mu|^2 = 2 + |mu|^2.
  EXPECT_NEAR(exact_transport_cost_2d(atoms, Eigen::VectorXd::Zero(1)), 27.0,
              1e-13);
}

}  // namespace
}  // namespace fmg
