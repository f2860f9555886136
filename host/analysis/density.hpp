// The marginal density log rho_t of the flow, on a 2-D grid or at points.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/common.hpp"
#include "kernels/mixture.hpp"

namespace fmg {

/// Evaluates log rho_t(x, y) on a regular grid of ny rows by nx columns for
/// a mixture of dimension 2. The result is row-major with y outer: entry
/// iy * nx + ix is at x = x_min + ix (x_max - x_min) / (nx - 1) and
/// y = y_min + iy (y_max - y_min) / (ny - 1), both ends included.
///
/// Values come from the log-sum-exp of fmg::log_density, so they stay
/// finite where rho_t underflows; exp() of them gives the density itself.
/// Runs in parallel over rows with OpenMP.
///
/// Throws fmg::InvalidArgument for an invalid mixture or mix.dim != 2, for
/// t outside [0, 1), nx or ny below 2, bounds that are not finite, or
/// x_min >= x_max or y_min >= y_max.
std::vector<double> log_density_grid(const MixtureView<double>& mix,
                                     ScheduleKind kind, double t,
                                     double x_min, double x_max, int nx,
                                     double y_min, double y_max, int ny);

/// Evaluates log rho_t at n points of dimension mix.dim, stored row-major in
/// `points`, in parallel with OpenMP. n = 0 returns an empty vector.
///
/// Throws fmg::InvalidArgument for an invalid mixture, t outside [0, 1), or
/// a null `points` with n > 0.
std::vector<double> log_density_points(const MixtureView<double>& mix,
                                       ScheduleKind kind, double t,
                                       const double* points, std::size_t n);

}  // namespace fmg
