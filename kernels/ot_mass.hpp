// Monte Carlo counts of Laguerre cells and of the bands along their facets,
// the per-sample part of the semi-discrete optimal transport solver.
//
// For potentials psi, sample x belongs to the cell of the atom k that
// minimises the cost c_k(x) = |x - mu_k|^2 / 2 - psi_k. Counting the samples
// of each cell estimates the cell masses. Counting the samples whose second
// smallest cost c_j is within `band_width` of the smallest one estimates the
// facet integrals: the gap c_j - c_k has gradient norm |mu_k - mu_j|, so the
// band on the k side of the facet shared by k and j has width
// band_width / |mu_k - mu_j|, and
//   (n_kj + n_jk) / (2 N band_width)
//     ~ (integral of the density over the facet) / |mu_k - mu_j|,
// which is minus the off-diagonal entry (k, j) of the Hessian of the dual.
//
// Each backend maps the same per-sample function over base samples drawn by
// philox_base_sample from (seed, index), so the CPU and CUDA counts agree
// exactly and never depend on threads or launch shapes.
#pragma once

#include <cstdint>

#include "kernels/common.hpp"
#include "kernels/mixture.hpp"

namespace fmg {

/// The two smallest Laguerre costs at one point.
template <class T>
struct LaguerreRank {
  int best;    ///< Atom of smallest cost: the cell of the point; -1 if none.
  int second;  ///< Atom of second smallest cost; -1 if none.
  T gap;       ///< Second smallest minus smallest cost, >= 0; inf if none.
};

/// Ranks the atoms at x by c_k = |x - mu_k|^2 / 2 - psi_k and returns the
/// two smallest. An atom whose psi is -inf, or whose cost is NaN, is never
/// ranked. Ties go to the lowest index, as in laguerre_cell. The weights in
/// `mix` are not read.
template <class T, class Vec>
FMG_HD FMG_INLINE LaguerreRank<T> rank_laguerre_costs(const MixtureView<T>& mix,
                                                      const T* psi,
                                                      const Vec& x) {
  LaguerreRank<T> rank{-1, -1, math::infinity<T>()};
  T best_cost = math::infinity<T>();
  T second_cost = math::infinity<T>();
  for (int k = 0; k < mix.num_atoms; ++k) {
    const T cost = T(0.5) * squared_distance(x, T(1), mix.atom(k)) - psi[k];
    if (cost < best_cost) {
      second_cost = best_cost;
      rank.second = rank.best;
      best_cost = cost;
      rank.best = k;
    } else if (cost < second_cost) {
      second_cost = cost;
      rank.second = k;
    }
  }
  if (rank.second >= 0) rank.gap = second_cost - best_cost;
  return rank;
}

namespace cpu {

/// Counts, over base samples first_index .. first_index + num_samples - 1
/// of `seed`, the samples of each Laguerre cell and of each facet band.
///
/// `mix` and `psi` (K entries, -inf excludes an atom) are in host memory.
/// On return cell_counts[k] (K entries) is the number of samples in cell k.
/// band_counts[k * K + j] (K * K entries) is the number of samples whose
/// best atom is k, whose second best is j, and whose cost gap is below
/// band_width.
/// Both arrays are overwritten. Uses OpenMP; the counts are integers and do
/// not depend on the number of threads. num_samples <= 0 gives zero counts.
void count_laguerre_cells(const MixtureView<double>& mix, const double* psi,
                          std::uint64_t seed, std::uint64_t first_index,
                          std::int64_t num_samples, double band_width,
                          std::int64_t* cell_counts,
                          std::int64_t* band_counts);

}  // namespace cpu

namespace cuda {

/// Computes the same counts as cpu::count_laguerre_cells on the current CUDA
/// device, bit for bit. The samples are generated on the device and never
/// copied; `mix`, `psi` and the outputs are in host memory.
///
/// Throws fmg::Unavailable in a build without CUDA or when no device is
/// present, and std::runtime_error naming the file, line and CUDA error when
/// a CUDA call fails.
void count_laguerre_cells(const MixtureView<double>& mix, const double* psi,
                          std::uint64_t seed, std::uint64_t first_index,
                          std::int64_t num_samples, double band_width,
                          std::int64_t* cell_counts,
                          std::int64_t* band_counts);

}  // namespace cuda
}  // namespace fmg
