#include "host/ot/laguerre2d.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "host/errors.hpp"
#include "host/ot/checks.hpp"

namespace fmg {
namespace {

void check_planar(const PointMatrix& atoms, const Eigen::VectorXd& psi) {
  detail::check_atoms(atoms);
  if (atoms.cols() != 2) {
    std::ostringstream message;
    message << "atoms have dimension " << atoms.cols()
            << "; the exact Laguerre route needs dimension 2";
    throw InvalidArgument(message.str());
  }
  detail::check_potentials(atoms, psi);
}

// Cell of atom k, without argument checks.
LabelledPolygon laguerre_cell_2d(const PointMatrix& atoms,
                                 const Eigen::VectorXd& psi, Eigen::Index k) {
  if (!std::isfinite(psi(k))) return LabelledPolygon{};
  const Eigen::Vector2d mu_k = atoms.row(k).transpose();
  LabelledPolygon cell = clip_square(gaussian_clip_half_width, -1);
  for (Eigen::Index j = 0; j < atoms.rows() && !cell.empty(); ++j) {
    if (j == k || !std::isfinite(psi(j))) continue;
    const Eigen::Vector2d mu_j = atoms.row(j).transpose();
    const Eigen::Vector2d normal = mu_j - mu_k;
    if (normal.x() == 0.0 && normal.y() == 0.0) {
      // The same point: the cell goes to the larger psi, then the lower index.
      if (psi(j) > psi(k) || (psi(j) == psi(k) && j < k)) return {};
      continue;
    }
    // c_k <= c_j  <=>  (mu_j - mu_k) . x <= (mu_j - mu_k) . (mu_j + mu_k) / 2
    //                                       - (psi_j - psi_k)
    const double offset =
        0.5 * normal.dot(mu_j + mu_k) - (psi(j) - psi(k));
    clip_polygon(cell, HalfPlane{normal, offset}, static_cast<int>(j));
  }
  return cell;
}

}  // namespace

std::vector<LabelledPolygon> laguerre_cells_2d(const PointMatrix& atoms,
                                               const Eigen::VectorXd& psi) {
  check_planar(atoms, psi);
  std::vector<LabelledPolygon> cells;
  cells.reserve(static_cast<std::size_t>(atoms.rows()));
  for (Eigen::Index k = 0; k < atoms.rows(); ++k) {
    cells.push_back(laguerre_cell_2d(atoms, psi, k));
  }
  return cells;
}

CellMeasures exact_cell_measures_2d(const PointMatrix& atoms,
                                    const Eigen::VectorXd& psi) {
  const std::vector<LabelledPolygon> cells = laguerre_cells_2d(atoms, psi);
  const Eigen::Index num_atoms = atoms.rows();

  CellMeasures measures;
  measures.masses = Eigen::VectorXd::Zero(num_atoms);
  measures.standard_errors = Eigen::VectorXd::Zero(num_atoms);
  Eigen::MatrixXd facets = Eigen::MatrixXd::Zero(num_atoms, num_atoms);
  for (Eigen::Index k = 0; k < num_atoms; ++k) {
    const LabelledPolygon& cell = cells[static_cast<std::size_t>(k)];
    if (cell.empty()) continue;
    measures.masses(k) = gaussian_polygon_mass(cell.vertices);
    const std::size_t n = cell.vertices.size();
    for (std::size_t i = 0; i < n; ++i) {
      const int neighbour = cell.labels[i];
      if (neighbour < 0) continue;
      facets(k, neighbour) += gaussian_segment_integral(
          cell.vertices[i], cell.vertices[(i + 1) % n]);
    }
  }

  measures.hessian = Eigen::MatrixXd::Zero(num_atoms, num_atoms);
  for (Eigen::Index k = 0; k < num_atoms; ++k) {
    for (Eigen::Index j = k + 1; j < num_atoms; ++j) {
      const double facet = 0.5 * (facets(k, j) + facets(j, k));
      if (facet == 0.0) continue;
      const double distance = (atoms.row(k) - atoms.row(j)).norm();
      measures.hessian(k, j) = -facet / distance;
      measures.hessian(j, k) = -facet / distance;
    }
  }
  for (Eigen::Index k = 0; k < num_atoms; ++k) {
    measures.hessian(k, k) = -measures.hessian.row(k).sum();
  }
  return measures;
}

double exact_transport_cost_2d(const PointMatrix& atoms,
                               const Eigen::VectorXd& psi) {
  const std::vector<LabelledPolygon> cells = laguerre_cells_2d(atoms, psi);
  double cost = 0.0;
  for (Eigen::Index k = 0; k < atoms.rows(); ++k) {
    const LabelledPolygon& cell = cells[static_cast<std::size_t>(k)];
    if (cell.empty()) continue;
    const GaussianPolygonMoments moments =
        gaussian_polygon_moments(cell.vertices);
    const Eigen::Vector2d mu = atoms.row(k).transpose();
    // E[|X - mu|^2 1_L] = E[|X|^2 1_L] - 2 mu . E[X 1_L] + |mu|^2 m.
    cost += moments.second_moment - 2.0 * mu.dot(moments.first_moment) +
            mu.squaredNorm() * moments.mass;
  }
  return std::max(0.0, cost);
}

}  // namespace fmg
