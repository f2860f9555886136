// Cell masses and dual Hessian of a Laguerre diagram under N(0, I_d): the
// quantities a mass oracle returns to the semi-discrete OT solver.
#pragma once

#include <cstdint>

#include <Eigen/Core>

namespace fmg {

/// K x d matrix of points or atoms, one per row, stored row-major so that a
/// row is contiguous.
using PointMatrix =
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Masses of the Laguerre cells of potentials psi under X ~ N(0, I_d) and
/// the Hessian of the dual.
///
/// Sign convention: `hessian` is the Jacobian of the masses,
/// hessian(k, j) = d m_k / d psi_j. It is the Hessian of the convex dual
/// G(psi) = E[max_k (psi_k - |X - mu_k|^2 / 2)] - sum_k w_k psi_k, whose
/// gradient is m - w. Off the diagonal, hessian(k, j) is minus the integral
/// of the density over the facet shared by cells k and j divided by
/// |mu_k - mu_j| (<= 0); on the diagonal it is minus the sum of the row's
/// off-diagonal entries (>= 0), so every row sums to zero.
struct CellMeasures {
  Eigen::VectorXd masses;           ///< m_k = P(X in L_k), K entries.
  Eigen::MatrixXd hessian;          ///< K x K, see the sign convention above.
  Eigen::VectorXd standard_errors;  ///< Binomial standard error of each mass;
                                    ///< zero for the exact route.
  std::int64_t samples = 0;         ///< Monte Carlo samples; 0 when exact.
  double band_width = 0.0;          ///< Cost band of the Hessian estimate;
                                    ///< 0 when exact.
};

}  // namespace fmg
