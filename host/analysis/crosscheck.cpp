#include "host/analysis/crosscheck.hpp"

#include <Eigen/Core>
#include <unsupported/Eigen/AutoDiff>

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "host/analysis/validate.hpp"
#include "host/errors.hpp"
#include "kernels/schedule.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace detail {
namespace {

template <class T>
using AutoDiff = Eigen::AutoDiffScalar<Eigen::Matrix<T, Eigen::Dynamic, 1>>;

/// Returns log rho_t(x) = logsumexp_k(log w_k - |x - b mu_k|^2 / (2 a^2))
/// - d (log(2 pi) / 2 + log a) as an autodiff scalar whose derivatives are
/// the score with respect to x. Written apart from fmg::log_density, which
/// does not instantiate for this scalar type: its schedule calls math::sin,
/// which has no overload for it, and its posterior mean deduces T from
/// expression-template arguments.
template <class T>
AutoDiff<T> autodiff_log_density(const MixtureView<T>& mix, T a, T b,
                                 const T* x) {
  const int d = mix.dim;
  std::vector<AutoDiff<T>> active(d);
  for (int j = 0; j < d; ++j) active[j] = AutoDiff<T>(x[j], d, j);

  const T inv_two_a2 = T(0.5) / (a * a);
  std::vector<AutoDiff<T>> terms;
  terms.reserve(mix.num_atoms);
  T max_term = -std::numeric_limits<T>::infinity();
  for (int k = 0; k < mix.num_atoms; ++k) {
    const T log_w = mix.log_weights[k];
    if (!(log_w > -std::numeric_limits<T>::infinity())) continue;
    const T* mu = mix.atom(k);
    AutoDiff<T> dist2(T(0), Eigen::Matrix<T, Eigen::Dynamic, 1>::Zero(d));
    for (int j = 0; j < d; ++j) {
      const AutoDiff<T> diff = active[j] - b * mu[j];
      dist2 += diff * diff;
    }
    terms.push_back(log_w - dist2 * inv_two_a2);
    max_term = std::fmax(max_term, terms.back().value());
  }

  AutoDiff<T> sum(T(0), Eigen::Matrix<T, Eigen::Dynamic, 1>::Zero(d));
  for (const AutoDiff<T>& term : terms) sum += exp(term - max_term);
  const T log_two_pi = T(1.83787706640934548356065947281123527);
  return max_term + log(sum) - T(d) * (T(0.5) * log_two_pi + std::log(a));
}

/// Errors of one point at one time.
struct PointError {
  double abs_error;
  double rel_error;
};

template <class T>
PointError velocity_error_at(const MixtureView<T>& mix, ScheduleKind kind,
                             T t, const ScheduleValues<T>& s, const T* x,
                             std::vector<T>& closed) {
  const int d = mix.dim;
  const StridedVec<const T> x_view{x, d, 1};
  StridedVec<T> closed_view{closed.data(), d, 1};
  velocity(mix, kind, t, x_view, closed_view);

  const AutoDiff<T> log_rho = autodiff_log_density(mix, s.a, s.b, x);
  const T a2 = s.a * s.a;
  const T c_noise = s.da / s.a;
  const T c_mean = s.db - s.da * s.b / s.a;

  double abs_error = 0.0;
  double max_closed = 0.0;
  bool finite = true;
  for (int j = 0; j < d; ++j) {
    const T score = log_rho.derivatives()(j);
    const T mean = (x[j] + a2 * score) / s.b;
    const T rebuilt = c_noise * x[j] + c_mean * mean;
    const double error =
        std::fabs(static_cast<double>(closed[j]) - static_cast<double>(rebuilt));
    finite = finite && std::isfinite(error) && std::isfinite(closed[j]);
    abs_error = std::fmax(abs_error, error);
    max_closed = std::fmax(max_closed, std::fabs(static_cast<double>(closed[j])));
  }

  const double infinity = std::numeric_limits<double>::infinity();
  if (!finite) return {infinity, infinity};
  double rel_error = abs_error / max_closed;
  if (max_closed == 0.0) rel_error = abs_error == 0.0 ? 0.0 : infinity;
  return {abs_error, rel_error};
}

template <class T>
CrosscheckCurve velocity_crosscheck_impl(const MixtureView<T>& mix,
                                         ScheduleKind kind, const T* points,
                                         std::size_t n,
                                         const std::vector<double>& times) {
  validate_mixture(mix);
  if (n == 0 || points == nullptr) {
    throw InvalidArgument("invalid points: the cross-check needs at least "
                          "one point and a non-null array");
  }
  if (times.empty()) {
    throw InvalidArgument("invalid times: the list is empty, but the "
                          "cross-check needs at least one time in (0, 1)");
  }
  for (double t : times) {
    // The rounding to T matters for float, where 1 - 1e-8 becomes 1.
    const T rounded = static_cast<T>(t);
    if (!(t > 0.0 && t < 1.0) || !(rounded > T(0) && rounded < T(1))) {
      throw InvalidArgument(
          "invalid time t = " + format_number(t) +
          ": the cross-check needs t in (0, 1) after rounding to the working "
          "precision, because at t = 0 b = 0 and the score does not "
          "determine m, and at t = 1 a = 0");
    }
  }

  CrosscheckCurve curve;
  curve.times = times;
  curve.max_abs_error.assign(times.size(), 0.0);
  curve.max_rel_error.assign(times.size(), 0.0);
  const int d = mix.dim;
  const auto num_times = static_cast<std::ptrdiff_t>(times.size());
  const auto num_pairs = num_times * static_cast<std::ptrdiff_t>(n);

  std::vector<ScheduleValues<T>> schedules(times.size());
  for (std::size_t i = 0; i < times.size(); ++i) {
    schedules[i] = evaluate_schedule(kind, static_cast<T>(times[i]));
  }

  // One parallel loop over all (time, point) pairs, each thread keeping its
  // own maxima per time, so threads meet only once at the end.
#pragma omp parallel
  {
    std::vector<T> closed(d);
    std::vector<double> local_abs(times.size(), 0.0);
    std::vector<double> local_rel(times.size(), 0.0);
#pragma omp for schedule(static) nowait
    for (std::ptrdiff_t pair = 0; pair < num_pairs; ++pair) {
      const std::ptrdiff_t i = pair / static_cast<std::ptrdiff_t>(n);
      const std::ptrdiff_t p = pair % static_cast<std::ptrdiff_t>(n);
      const PointError e =
          velocity_error_at(mix, kind, static_cast<T>(times[i]), schedules[i],
                            points + p * d, closed);
      local_abs[i] = std::fmax(local_abs[i], e.abs_error);
      local_rel[i] = std::fmax(local_rel[i], e.rel_error);
    }
#pragma omp critical(fmg_crosscheck_merge)
    for (std::size_t i = 0; i < times.size(); ++i) {
      curve.max_abs_error[i] = std::fmax(curve.max_abs_error[i], local_abs[i]);
      curve.max_rel_error[i] = std::fmax(curve.max_rel_error[i], local_rel[i]);
    }
  }
  return curve;
}

}  // namespace
}  // namespace detail

CrosscheckCurve velocity_crosscheck(const MixtureView<double>& mix,
                                    ScheduleKind kind, const double* points,
                                    std::size_t n,
                                    const std::vector<double>& times) {
  return detail::velocity_crosscheck_impl(mix, kind, points, n, times);
}

CrosscheckCurve velocity_crosscheck(const MixtureView<float>& mix,
                                    ScheduleKind kind, const float* points,
                                    std::size_t n,
                                    const std::vector<double>& times) {
  return detail::velocity_crosscheck_impl(mix, kind, points, n, times);
}

}  // namespace fmg
