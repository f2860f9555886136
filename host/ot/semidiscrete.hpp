// Semi-discrete optimal transport from N(0, I_d) to sum_k w_k delta_{mu_k}
// for the cost c(x, y) = |x - y|^2 / 2: the potentials psi whose Laguerre
// cells L_k = {x : |x - mu_k|^2 / 2 - psi_k <= |x - mu_j|^2 / 2 - psi_j
// for all j} have masses P(X in L_k) = w_k, found by the damped Newton
// method of Kitagawa, Merigot and Thibert ("Convergence of a Newton
// algorithm for semi-discrete optimal transport", JEMS 2019).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "host/ot/cell_measures.hpp"

namespace fmg {

/// Source of the cell masses and dual Hessian in the solver.
enum class MassRoute {
  exact_2d,          ///< Exact polygon integrals; d = 2 only.
  monte_carlo_cpu,   ///< Band estimator over base samples, OpenMP.
  monte_carlo_cuda,  ///< The same counts on a CUDA device.
};

/// Outcome of a solve.
enum class OtStatus {
  converged,       ///< max_k |m_k - w_k| <= tolerance.
  noise_floor,     ///< The residual reached the precision of the masses:
                   ///< noise_floor_multiple Monte Carlo standard errors, or
                   ///< the rounding level of the exact route.
  max_iterations,  ///< max_iterations Newton steps without either.
  failed,          ///< No start or no step could be found; see message.
};

/// Returns "converged", "noise_floor", "max_iterations" or "failed".
const char* to_string(OtStatus status);

/// Returns "exact_2d", "monte_carlo_cpu" or "monte_carlo_cuda".
const char* to_string(MassRoute route);

/// Options of solve_semidiscrete_ot.
struct SemiDiscreteOptions {
  MassRoute route = MassRoute::exact_2d;
  double tolerance = 1e-10;      ///< On max_k |m_k - w_k|; finite, > 0.
  int max_iterations = 100;      ///< Newton steps; >= 1.
  std::int64_t samples = 1'000'000;  ///< Per Monte Carlo evaluation; >= 1.
  std::uint64_t seed = 0;        ///< Seed of the Monte Carlo samples.
  /// Monte Carlo stop: the solve ends with noise_floor once the residual is
  /// below this multiple of the largest mass standard error; finite, > 0.
  double noise_floor_multiple = 0.25;
};

/// Outcome of solve_semidiscrete_ot. Vectors have one entry per atom.
struct SemiDiscreteResult {
  OtStatus status = OtStatus::failed;
  std::string message;             ///< One line on how the solve ended.
  std::vector<std::string> notes;  ///< Merged duplicates, excluded atoms.

  /// Potentials, psi = 0 at the first atom of positive weight (atom 0 when
  /// its weight is positive); -inf for atoms of zero weight. Atoms at the
  /// same point share one value.
  Eigen::VectorXd psi;
  /// Monte Carlo standard error of psi from the multinomial covariance of
  /// the masses, propagated through the inverse Hessian. 0 for the exact
  /// route, for the fixed atom and for excluded atoms; +inf when the sampled
  /// Hessian is singular.
  Eigen::VectorXd psi_standard_errors;
  /// Cell masses at psi, by the route used. Atoms that share a cell each
  /// get the part of the cell's mass proportional to their weight.
  Eigen::VectorXd masses;
  Eigen::VectorXd mass_standard_errors;  ///< 0 for the exact route.
  Eigen::VectorXd weights;               ///< The weights normalised to sum 1.

  int iterations = 0;  ///< Accepted Newton steps.
  int evaluations = 0; ///< Mass and Hessian evaluations, line search included.
  /// max_k |m_k - w_k| at psi, by the route used. For the Monte Carlo routes
  /// it is measured on the samples psi was fitted to, so it understates the
  /// true residual; see holdout_residual.
  double residual = std::numeric_limits<double>::infinity();
  double residual_standard_error = 0.0;  ///< Largest mass standard error.
  std::vector<double> residual_history;  ///< residual before each step.
  /// Exact max_k |m_k - w_k| of psi, when d = 2 (any route).
  std::optional<double> exact_residual;
  /// Monte Carlo routes: max_k |m_k - w_k| of psi on N fresh samples
  /// (indices N .. 2N - 1), an estimate of the true residual.
  std::optional<double> holdout_residual;

  /// cell_owner[k] is the atom whose Laguerre cell supplies atom k's mass.
  /// It is k itself unless an earlier atom of positive weight is at the same
  /// point, and -1 for atoms of zero weight.
  std::vector<int> cell_owner;
  bool duplicates_merged = false;  ///< Some atoms share a cell.
  /// The start was psi_k = (1 - s) |mu_k|^2 / 2 (shifted), whose cells are
  /// the Voronoi cells of the atoms shrunk by s towards the origin.
  double start_scale = 1.0;
};

/// Solves for the Laguerre potentials of the transport from N(0, I_d) to the
/// atoms (K x d, finite) with weights (K entries, finite, >= 0, positive
/// sum; normalised to sum 1).
///
/// Damped Newton on the K' - 1 potentials of the K' distinct atoms of
/// positive weight, the first held at 0. The start is the first of
/// s = 1, 1/2, 1/4, ... (down to about 1 / (2 max_k |mu_k|)) at which every
/// cell has at least half its weight, else the one whose smallest mass to
/// weight ratio is largest. Each step solves H d = w - m and halves d until
/// every mass stays above half the smaller of the smallest weight and the
/// smallest starting mass, and |m - w|_2 falls by the factor 1 - tau / 2.
/// The Monte Carlo routes reuse one sample set (seed, indices 0 .. N - 1)
/// in every evaluation, so each solve is deterministic.
///
/// Every path ends with a status and finite masses; psi is finite except
/// for the -inf of zero-weight atoms. K' = 1 returns psi = 0 at once.
///
/// Throws InvalidArgument for invalid atoms, weights or options (tolerance
/// <= 0 or NaN, max_iterations < 1, samples < 1, noise_floor_multiple <= 0,
/// route exact_2d with d != 2) and fmg::Unavailable for monte_carlo_cuda in
/// a build without CUDA or without a device.
SemiDiscreteResult solve_semidiscrete_ot(const PointMatrix& atoms,
                                         const Eigen::VectorXd& weights,
                                         const SemiDiscreteOptions& options);

/// Throws InvalidArgument naming the first invalid option and its valid
/// range; `dim` is the atoms' dimension.
void validate_semidiscrete_options(const SemiDiscreteOptions& options,
                                   Eigen::Index dim);

}  // namespace fmg
