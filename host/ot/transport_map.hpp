// The semi-discrete optimal transport map T, which sends each Laguerre cell
// to its atom: labels, straight-line trajectories and transport cost.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "host/ot/cell_measures.hpp"

namespace fmg {

/// Returns, for each row x of points (N x d), the atom k minimising
/// |x - mu_k|^2 / 2 - psi_k, the index of its Laguerre cell. Ties go to the
/// lowest index, and atoms with psi = -inf are never chosen. Runs with
/// OpenMP; N = 0 gives an empty vector.
///
/// Throws InvalidArgument unless atoms is K x d with finite entries, psi
/// has K entries (finite or -inf, at least one finite) and points has d
/// columns of finite entries.
std::vector<int> laguerre_labels(const PointMatrix& points,
                                 const PointMatrix& atoms,
                                 const Eigen::VectorXd& psi);

/// Returns the straight optimal transport paths
/// x_i(s) = (1 - s) x_i + s mu_{T(x_i)} of every row of points at every time
/// of `times`, as a (T N) x d matrix whose row t N + i is x_i(times[t]).
///
/// Same arguments and errors as laguerre_labels; also throws
/// InvalidArgument unless every time lies in [0, 1].
PointMatrix ot_trajectories(const PointMatrix& points, const PointMatrix& atoms,
                            const Eigen::VectorXd& psi,
                            const std::vector<double>& times);

/// A Monte Carlo estimate and its standard error.
struct TransportCostEstimate {
  double value = 0.0;           ///< Mean of |T(X) - X|^2 over the samples.
  double standard_error = 0.0;  ///< Sample standard deviation / sqrt(N).
  std::int64_t samples = 0;
};

/// Estimates the transport cost E|T(X) - X|^2 for X ~ N(0, I_d) from base
/// samples 0 .. samples - 1 of `seed` (philox_base_sample). Runs with
/// OpenMP and sums fixed chunks of samples in a fixed order, so the result
/// does not depend on the thread count.
///
/// Throws InvalidArgument for invalid atoms or psi (as laguerre_labels) or
/// samples < 1.
TransportCostEstimate estimate_transport_cost(const PointMatrix& atoms,
                                              const Eigen::VectorXd& psi,
                                              std::int64_t samples,
                                              std::uint64_t seed);

}  // namespace fmg
