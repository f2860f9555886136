// Cross-check of the closed-form velocity against the velocity rebuilt from
// the automatic-differentiation score of log rho_t.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/common.hpp"
#include "kernels/mixture.hpp"

namespace fmg {

/// Discrepancy between the two velocity routes at each requested time.
struct CrosscheckCurve {
  std::vector<double> times;
  /// Max over the points of |v_closed - v_autodiff|, infinity norm.
  std::vector<double> max_abs_error;
  /// Max over the points of that norm divided by |v_closed|, infinity norm.
  std::vector<double> max_rel_error;
};

/// Compares the closed-form velocity of fmg::velocity with the velocity
/// rebuilt from the score s = grad log rho_t(x), which forward-mode
/// automatic differentiation (Eigen::AutoDiffScalar) computes from a
/// log-sum-exp of the mixture's log density. The score identity
/// s = (b m - x) / a^2 gives m = (x + a^2 s) / b, and then
/// v = (a'/a) x + (b' - a' b / a) m.
///
/// `points` contains n points of dimension mix.dim, row-major. Every time must
/// lie in (0, 1): at t = 0, b = 0, so the score -x carries no information
/// about m and the rebuilt m is 0/0. Near t = 0 the rebuilt m loses digits
/// like u / b, and near t = 1 both routes lose digits like u / a (u the unit
/// roundoff), so the curve rises at both ends; that loss is reported, not
/// hidden. A non-finite velocity on either route counts as an infinite
/// error. When v_closed is exactly 0 the relative error is 0 if the routes
/// agree and infinite otherwise.
///
/// Runs in parallel over points with OpenMP. The cost is O(n K d^2) per
/// time, because every operation of the autodiff scalar carries a
/// d-vector of derivatives.
///
/// Throws fmg::InvalidArgument for an invalid mixture, n = 0, a null
/// `points`, an empty `times` or a time outside (0, 1).
CrosscheckCurve velocity_crosscheck(const MixtureView<double>& mix,
                                    ScheduleKind kind, const double* points,
                                    std::size_t n,
                                    const std::vector<double>& times);

/// Single-precision variant of velocity_crosscheck: both routes run in
/// float, so the errors are about 2^29 (5e8) times those in double.
CrosscheckCurve velocity_crosscheck(const MixtureView<float>& mix,
                                    ScheduleKind kind, const float* points,
                                    std::size_t n,
                                    const std::vector<double>& times);

}  // namespace fmg
