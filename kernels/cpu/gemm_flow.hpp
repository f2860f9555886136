// Matrix-product velocity path of the CPU backend.
//
// The responsibilities softmax_k(log w_k - |x - b mu_k|^2 / (2 a^2)) do not
// change when the term |x|^2 / (2 a^2), common to every k, is dropped, so
// the logits of a block of n samples can be
//   l_ik = log w_k + b_i (<x_i, mu_k> - b_i |mu_k|^2 / 2) / a_i^2,
// where G = X M^T (n x K) is one matrix product that needs no time, so each
// sample may have its own t. A max-subtracted exponential of each row gives
// the responsibilities Gamma, and the posterior means are Gamma M (n x d),
// a second product. Atoms and samples are first shifted by the atoms'
// centre c (x - b c and mu_k - c), which leaves the softmax unchanged and
// keeps <x, mu_k> small when the atoms lie far from the origin.
//
// Rounding: the direct path computes |x - b mu_k|^2, whose error is relative
// to the distance itself and so vanishes at the atom a sample converges to.
// Here the error of a logit is about machine epsilon times |x - b c|
// |mu_k - c| b / a^2, an absolute error that grows like 1 / a^2 as t -> 1.
// It only moves the softmax where two logits are within that error of each
// other, which near t = 1 means a sample on a cell boundary. In double it
// stays far below the step tolerances; in float the endpoints differ from
// the direct path's by more (measured in tests/core/test_gemm_flow.cpp).
#pragma once

#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "kernels/batch.hpp"

namespace fmg::gemm {

/// Samples that advance in lockstep in one block. Fixed, not derived from
/// the thread count, so results do not depend on it. At K = 10^4 a block's
/// logits take 128 x 10^4 values (10 MiB in double) per thread.
inline constexpr std::size_t block_rows = 128;

template <class T>
using RowMatrix =
    Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A mixture prepared for the matrix path, in precision T.
template <class T>
struct MatrixMixture {
  MixtureView<T> view;    ///< The original atoms, for labels and fallbacks.
  RowMatrix<T> atoms;     ///< K x d, mu_k - c.
  std::vector<T> center;  ///< c, as shift_atoms computes it.
  Eigen::Array<T, 1, Eigen::Dynamic> log_weights;  ///< -inf for weight 0.
  Eigen::Array<T, 1, Eigen::Dynamic> half_norms;   ///< |mu_k - c|^2 / 2.
  std::vector<int> zero_weight_atoms;

  /// Prepares `mixture`, whose storage must outlive this object.
  explicit MatrixMixture(const HostMixture<T>& mixture);
};

/// Evaluates the velocity of many samples, each at its own time, with two
/// matrix products. Holds the scratch of up to `capacity` rows.
template <class T>
class BatchVelocity {
 public:
  BatchVelocity(const MatrixMixture<T>& mixture, ScheduleKind schedule,
                std::size_t capacity);

  /// Writes v(x_i, t_i) into row i of `v` for the first `rows` rows of `x`
  /// (both capacity x d, row-major) at the `rows` times t in [0, 1). A row
  /// whose logits or normaliser are not finite (a non-finite state, or an
  /// overflow) is recomputed by the per-sample velocity(), so non-finite
  /// states behave as on the direct path.
  void evaluate(const RowMatrix<T>& x, const T* t, std::size_t rows,
                RowMatrix<T>& v);

 private:
  const MatrixMixture<T>& mixture_;
  ScheduleKind schedule_;
  RowMatrix<T> centered_;  ///< x - b c.
  RowMatrix<T> logits_;    ///< n x K: inner products, then responsibilities.
  RowMatrix<T> means_;     ///< n x d: Gamma (M - c).
  std::vector<ScheduleValues<T>> schedules_;
  std::vector<Eigen::Index> fallback_rows_;  ///< Rows for velocity().
};

/// Integrates every sample of `chunk` on the matrix path with `threads`
/// OpenMP threads, blocks of block_rows samples per thread, and adds the
/// reductions to `tally`. Base samples come from the same Philox stream as
/// the direct path, and every sample keeps its own Dormand-Prince step and
/// controller. So endpoints agree with the direct path to rounding, and
/// labels, statuses and counters agree unless rounding flips a decision (a
/// step accepted on one path and rejected on the other).
template <class T>
void run_matrix_chunk(const MatrixMixture<T>& mixture,
                      const FlowProblem<T>& problem, const FlowChunk<T>& chunk,
                      int threads, FlowTally& tally);

}  // namespace fmg::gemm
