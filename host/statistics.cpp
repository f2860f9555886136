#include "host/statistics.hpp"

#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "host/errors.hpp"

namespace fmg {

BasinStatistics basin_statistics(const FlowTally& tally,
                                 const std::vector<double>& weights) {
  if (weights.size() != tally.label_counts.size()) {
    throw InvalidArgument("basin statistics need one weight per atom: got " +
                          std::to_string(weights.size()) + " weights for " +
                          std::to_string(tally.label_counts.size()) +
                          " atoms");
  }
  BasinStatistics stats;
  stats.counts = tally.label_counts;
  stats.succeeded =
      std::accumulate(stats.counts.begin(), stats.counts.end(), std::uint64_t{0});
  const double total_weight =
      std::accumulate(weights.begin(), weights.end(), 0.0);
  const std::size_t k_count = weights.size();
  stats.fractions.resize(k_count);
  stats.weights.resize(k_count);
  stats.standard_errors.resize(k_count);
  stats.z_scores.resize(k_count);
  const double n = static_cast<double>(stats.succeeded);
  for (std::size_t k = 0; k < k_count; ++k) {
    const double w = weights[k] / total_weight;
    stats.weights[k] = w;
    stats.fractions[k] = n > 0 ? static_cast<double>(stats.counts[k]) / n : 0.0;
    stats.standard_errors[k] = n > 0 ? std::sqrt(w * (1.0 - w) / n) : 0.0;
    // An atom of weight 0 or 1 has no spread: its z-score is undefined
    // (NaN, written as null in JSON).
    stats.z_scores[k] = stats.standard_errors[k] > 0
                            ? (stats.fractions[k] - w) / stats.standard_errors[k]
                            : std::numeric_limits<double>::quiet_NaN();
  }
  return stats;
}

StepStatistics step_statistics(const FlowTally& tally) {
  StepStatistics stats;
  const std::uint64_t samples = tally.samples();
  stats.max_accepted = tally.accepted_max;
  stats.total_evaluations = tally.evaluations_sum;
  stats.max_steps_reached =
      tally.status_counts[static_cast<int>(SampleStatus::max_steps_reached)];
  stats.non_finite_state =
      tally.status_counts[static_cast<int>(SampleStatus::non_finite_state)];
  if (samples == 0) return stats;

  const double n = static_cast<double>(samples);
  stats.mean_accepted = static_cast<double>(tally.accepted_sum) / n;
  stats.mean_rejected = static_cast<double>(tally.rejected_sum) / n;
  stats.mean_evaluations = static_cast<double>(tally.evaluations_sum) / n;

  // Smallest step count whose cumulative share reaches q.
  const auto percentile = [&](double q) {
    const double target = std::ceil(q * n);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < tally.step_histogram.size(); ++b) {
      cumulative += tally.step_histogram[b];
      if (static_cast<double>(cumulative) >= target) {
        if (b + 1 == tally.step_histogram.size()) stats.percentiles_capped = true;
        return static_cast<std::uint32_t>(b);
      }
    }
    return static_cast<std::uint32_t>(tally.step_histogram.size() - 1);
  };
  stats.p50 = percentile(0.50);
  stats.p90 = percentile(0.90);
  stats.p99 = percentile(0.99);
  return stats;
}

}  // namespace fmg
