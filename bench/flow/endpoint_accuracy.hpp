// Endpoint accuracy of a flow run: tight double-precision reference
// endpoints from fmg's own per-sample integrator, and the distances of a
// run's endpoints from them.
#pragma once

#include <cstddef>
#include <vector>

#include "host/io/mixture_io.hpp"
#include "kernels/common.hpp"

namespace fmg::bench {

/// Dormand-Prince tolerances of the reference endpoints.
inline constexpr double reference_rtol = 1e-13;
inline constexpr double reference_atol = 1e-14;

/// Reference endpoints of a set of starting points.
struct ReferenceEndpoints {
  std::vector<double> endpoints;  ///< count x d, row-major; NaN rows failed.
  std::size_t failures = 0;       ///< Samples whose integration failed.
  double wall_seconds = 0.0;
};

/// Integrates each row of `starts` (count x mixture.dim, row-major) from
/// t = 0 to 1 - eps with fmg::integrate_sample in double precision,
/// Dormand-Prince at rtol reference_rtol and atol reference_atol, on
/// `threads` OpenMP threads (0: OpenMP's default). A sample that stops
/// before 1 - eps gets a row of NaN and counts as a failure.
///
/// Expects a mixture that passed validate_mixture and eps in (0, 1).
ReferenceEndpoints compute_reference_endpoints(const Mixture& mixture,
                                               ScheduleKind schedule,
                                               double eps,
                                               const std::vector<double>& starts,
                                               int threads);

/// Statistics of the Euclidean distances between endpoints and reference.
struct EndpointErrors {
  std::size_t samples = 0;   ///< Rows with a finite distance.
  std::size_t excluded = 0;  ///< Rows whose distance is NaN or infinite.
  double max_distance = 0.0;
  double median_distance = 0.0;  ///< Mean of the two middle values if even.
};

/// Compares the first rows of `endpoints` with the rows of `reference`
/// (both row-major with `dim` columns); `endpoints` may have more rows, and
/// fewer throws fmg::InvalidArgument.
/// Rows whose distance is not finite, such as failed samples on either
/// side, are counted in `excluded` and left out of the statistics. With no
/// finite row, both statistics are NaN.
EndpointErrors compare_endpoints(const std::vector<double>& endpoints,
                                 const std::vector<double>& reference,
                                 int dim);

}  // namespace fmg::bench
