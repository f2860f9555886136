// Basin fractions and step statistics of a flow run, from its tally.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/batch.hpp"

namespace fmg {

/// Fraction of samples that reached each atom, against the target weights.
struct BasinStatistics {
  std::uint64_t succeeded = 0;  ///< Samples with status ok: the denominator.
  std::vector<std::uint64_t> counts;
  std::vector<double> fractions;
  std::vector<double> weights;  ///< Target weights, normalised to sum 1.
  /// Binomial standard error sqrt(w (1 - w) / succeeded) of each fraction
  /// under the hypothesis that the fractions equal the weights.
  std::vector<double> standard_errors;
  /// (fraction - weight) / standard error; 0 where the error is 0.
  std::vector<double> z_scores;
};

/// Computes basin statistics from `tally`; an atom of weight 0 or 1 has
/// standard error 0. Throws fmg::InvalidArgument when the weight count
/// differs from the tally's atom count.
BasinStatistics basin_statistics(const FlowTally& tally,
                                 const std::vector<double>& weights);

/// Accepted steps per sample and the work behind them.
struct StepStatistics {
  double mean_accepted = 0.0;
  std::uint32_t max_accepted = 0;
  /// Percentiles 50, 90 and 99 of the accepted steps. Exact below
  /// step_histogram_bins - 1; a percentile in the last bin reads as that
  /// bin's lower bound and sets `percentiles_capped`.
  std::uint32_t p50 = 0, p90 = 0, p99 = 0;
  bool percentiles_capped = false;
  double mean_rejected = 0.0;
  double mean_evaluations = 0.0;
  std::uint64_t total_evaluations = 0;
  std::uint64_t max_steps_reached = 0;
  std::uint64_t non_finite_state = 0;
};

StepStatistics step_statistics(const FlowTally& tally);

}  // namespace fmg
