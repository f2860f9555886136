// Monte Carlo estimates of Laguerre cell masses and of the dual Hessian in
// any dimension, from counter-based N(0, I_d) samples.
#pragma once

#include <cstdint>

#include <Eigen/Core>

#include "host/ot/cell_measures.hpp"

namespace fmg {

/// Backend of the Monte Carlo counts.
enum class MonteCarloBackend { cpu, cuda };

/// Sample set and Hessian band of a Monte Carlo evaluation.
struct MonteCarloOptions {
  std::int64_t samples = 1'000'000;  ///< N >= 1.
  std::uint64_t seed = 0;            ///< Key of philox_base_sample.
  std::uint64_t first_index = 0;     ///< Samples are first_index .. + N - 1.
  MonteCarloBackend backend = MonteCarloBackend::cpu;
  double band_width = 0.0;  ///< Cost band delta; 0 picks default_band_width.
};

/// Returns the default cost band delta = l N^(-1/5) of the Hessian estimate,
/// where l is the smallest distance between two distinct atoms of finite
/// psi (1 if there are fewer than two).
///
/// The two-sided band around a facet has half-width delta / |mu_k - mu_j|
/// and gives a centred difference of the facet integral: its bias is of
/// order delta^2 along the facet (plus an order-delta term from the facet's
/// ends), while its relative standard error is 1 / sqrt(2 N delta H_kj).
/// Balancing delta^4 against 1 / (N delta) gives delta ~ N^(-1/5). With the
/// scale l, no band is wider than l N^(-1/5) for any pair of atoms. The
/// Hessian only steers Newton's method, so its bias moves no solution.
double default_band_width(const PointMatrix& atoms, const Eigen::VectorXd& psi,
                          std::int64_t samples);

/// Estimates the masses of the Laguerre cells of psi under N(0, I_d) and
/// the dual Hessian (sign convention in CellMeasures) from N base samples.
///
/// m_k = n_k / N with binomial standard error sqrt(m_k (1 - m_k) / N), and
/// hessian(k, j) = -(b_kj + b_jk) / (2 N delta) for k != j, where b_kj counts
/// the samples of cell k whose second best atom is j at a cost gap below
/// delta. Equal seeds and sample ranges give identical results on every
/// backend and thread count.
///
/// atoms is K x d with finite entries; psi has K entries, finite or -inf
/// (an excluded atom). Memory grows as K^2 (band counts). Throws
/// InvalidArgument for invalid arguments (samples < 1, a negative or
/// non-finite band width) and fmg::Unavailable when the CUDA backend is
/// requested but not compiled in or no device is present.
CellMeasures monte_carlo_cell_measures(const PointMatrix& atoms,
                                       const Eigen::VectorXd& psi,
                                       const MonteCarloOptions& options);

}  // namespace fmg
