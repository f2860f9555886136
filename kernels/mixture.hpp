// Closed-form marginal, responsibilities and velocity of the flow from
// N(0, I_d) to a mixture of Dirac masses.
//
// With X_t = a X0 + b X1 and X1 = sum_k w_k delta_{mu_k}, the marginal is
// rho_t(x) = sum_k w_k N(x; b mu_k, a^2 I). Everything is computed from the
// log-space terms l_k = log w_k - |x - b mu_k|^2 / (2 a^2) and a streaming
// log-sum-exp, so it stays finite as a -> 0 and in high dimension.
#pragma once

#include "kernels/common.hpp"
#include "kernels/schedule.hpp"

namespace fmg {

/// Non-owning view of a mixture, valid on the side (host or device) that
/// owns the memory.
template <class T>
struct MixtureView {
  const T* atoms;        ///< K x d, row-major.
  const T* log_weights;  ///< K entries; -inf for an atom of zero weight.
  int num_atoms;         ///< K >= 1.
  int dim;               ///< d >= 1.

  FMG_HD FMG_INLINE const T* atom(int k) const {
    return atoms + static_cast<std::ptrdiff_t>(k) * dim;
  }
};

/// Squared distance |x - b mu|^2, subtracting before squaring so that far
/// atoms lose no accuracy to cancellation.
template <class T, class Vec>
FMG_HD FMG_INLINE T squared_distance(const Vec& x, T b, const T* mu) {
  T sum = T(0);
  for (int j = 0; j < x.size(); ++j) {
    const T diff = x[j] - b * mu[j];
    sum += diff * diff;
  }
  return sum;
}

/// Computes the posterior mean m = sum_k gamma_k mu_k at x into `m` and
/// returns the log normaliser log sum_k exp(l_k).
///
/// One pass over the atoms keeps a running maximum and rescales the partial
/// sums when it grows. If every l_k overflows to -inf, which needs distances
/// far beyond any atom scale in float, m falls back to the nearest atom of
/// positive weight, the a -> 0 limit of the responsibilities.
template <class T, class VecIn, class VecOut>
FMG_HD FMG_INLINE T posterior_mean(const MixtureView<T>& mix, T b,
                                   T inv_two_a2, const VecIn& x, VecOut& m) {
  const int d = x.size();
  for (int j = 0; j < d; ++j) m[j] = T(0);

  T running_max = -math::infinity<T>();
  T sum = T(0);
  int nearest = -1;
  T nearest_dist = math::infinity<T>();
  for (int k = 0; k < mix.num_atoms; ++k) {
    const T log_w = mix.log_weights[k];
    if (!(log_w > -math::infinity<T>())) continue;
    const T* mu = mix.atom(k);
    const T dist2 = squared_distance(x, b, mu);
    if (dist2 < nearest_dist || nearest < 0) {
      nearest_dist = dist2;
      nearest = k;
    }
    const T l = log_w - dist2 * inv_two_a2;
    if (!(l > -math::infinity<T>())) continue;
    if (l > running_max) {
      const T scale = math::exp(running_max - l);
      sum = sum * scale + T(1);
      for (int j = 0; j < d; ++j) m[j] = m[j] * scale + mu[j];
      running_max = l;
    } else {
      const T e = math::exp(l - running_max);
      sum += e;
      for (int j = 0; j < d; ++j) m[j] += e * mu[j];
    }
  }

  if (!(running_max > -math::infinity<T>())) {
    // NOTE: only reached when every l_k is -inf; nearest is then the hard
    // assignment, and the returned normaliser is -inf as the true one.
    if (nearest < 0) nearest = 0;
    const T* mu = mix.atom(nearest);
    for (int j = 0; j < d; ++j) m[j] = mu[j];
    return running_max;
  }
  const T inv_sum = T(1) / sum;
  for (int j = 0; j < d; ++j) m[j] *= inv_sum;
  return running_max + math::log(sum);
}

/// Computes the velocity v(x, t) into `v`; t must lie in [0, 1).
///
/// Uses v = a' (x - b m) / a + b' m, which equals the textbook form
/// (a'/a) x + (b' - a' b / a) m but subtracts only once, so the
/// 1/(1 - t) growth of both coefficients near t = 1 cancels in x - b m.
template <class T, class VecIn, class VecOut>
FMG_HD FMG_INLINE void velocity(const MixtureView<T>& mix, ScheduleKind kind,
                                T t, const VecIn& x, VecOut& v) {
  const ScheduleValues<T> s = evaluate_schedule(kind, t);
  const T inv_a = T(1) / s.a;
  const T inv_two_a2 = T(0.5) * inv_a * inv_a;
  posterior_mean(mix, s.b, inv_two_a2, x, v);
  const T c_noise = s.da * inv_a;
  for (int j = 0; j < x.size(); ++j) {
    const T m = v[j];
    v[j] = c_noise * (x[j] - s.b * m) + s.db * m;
  }
}

/// Returns log rho_t(x) for t in [0, 1); `scratch` receives the posterior
/// mean as a by-product.
template <class T, class VecIn, class VecOut>
FMG_HD FMG_INLINE T log_density(const MixtureView<T>& mix, ScheduleKind kind,
                                T t, const VecIn& x, VecOut& scratch) {
  const ScheduleValues<T> s = evaluate_schedule(kind, t);
  const T inv_a = T(1) / s.a;
  const T log_norm = posterior_mean(mix, s.b, T(0.5) * inv_a * inv_a, x,
                                    scratch);
  const T log_two_pi = T(1.83787706640934548356065947281123527);
  const T log_a = log_schedule_a(kind, t);
  return log_norm - T(x.size()) * (T(0.5) * log_two_pi + log_a);
}

/// Computes log gamma_k(x, t) for every atom into `log_gamma` (K entries).
/// Atoms of zero weight get -inf.
template <class T, class VecIn>
FMG_HD FMG_INLINE void log_responsibilities(const MixtureView<T>& mix,
                                            ScheduleKind kind, T t,
                                            const VecIn& x, T* log_gamma) {
  const ScheduleValues<T> s = evaluate_schedule(kind, t);
  const T inv_a = T(1) / s.a;
  const T inv_two_a2 = T(0.5) * inv_a * inv_a;
  T running_max = -math::infinity<T>();
  int nearest = 0;
  T nearest_dist = math::infinity<T>();
  for (int k = 0; k < mix.num_atoms; ++k) {
    const T log_w = mix.log_weights[k];
    if (!(log_w > -math::infinity<T>())) {
      log_gamma[k] = -math::infinity<T>();
      continue;
    }
    const T dist2 = squared_distance(x, s.b, mix.atom(k));
    if (dist2 < nearest_dist) {
      nearest_dist = dist2;
      nearest = k;
    }
    log_gamma[k] = log_w - dist2 * inv_two_a2;
    running_max = math::max(running_max, log_gamma[k]);
  }
  if (!(running_max > -math::infinity<T>())) {
    for (int k = 0; k < mix.num_atoms; ++k) {
      log_gamma[k] = k == nearest ? T(0) : -math::infinity<T>();
    }
    return;
  }
  T sum = T(0);
  for (int k = 0; k < mix.num_atoms; ++k) {
    sum += math::exp(log_gamma[k] - running_max);
  }
  const T log_norm = running_max + math::log(sum);
  for (int k = 0; k < mix.num_atoms; ++k) log_gamma[k] -= log_norm;
}

/// Returns the index k of positive weight that minimises |x - b mu_k|, the
/// label of a flow endpoint at a time where the schedule's b is `b` (an atom
/// of zero weight attracts no mass). Ties go to the lowest index.
template <class T, class Vec>
FMG_HD FMG_INLINE int nearest_weighted_atom(const MixtureView<T>& mix, T b,
                                            const Vec& x) {
  int best = 0;
  bool found = false;
  T best_dist = math::infinity<T>();
  for (int k = 0; k < mix.num_atoms; ++k) {
    if (!(mix.log_weights[k] > -math::infinity<T>())) continue;
    const T dist2 = squared_distance(x, b, mix.atom(k));
    if (!found || dist2 < best_dist) {
      best_dist = dist2;
      best = k;
      found = true;
    }
  }
  return best;
}

/// Returns the index of the atom minimising |x - mu_k|^2 / 2 - psi_k, the
/// Laguerre cell of x; psi == nullptr means psi = 0, the nearest atom.
/// Ties go to the lowest index.
template <class T, class Vec>
FMG_HD FMG_INLINE int laguerre_cell(const MixtureView<T>& mix, const T* psi,
                                    const Vec& x) {
  int best = 0;
  T best_cost = math::infinity<T>();
  for (int k = 0; k < mix.num_atoms; ++k) {
    T cost = T(0.5) * squared_distance(x, T(1), mix.atom(k));
    if (psi != nullptr) cost -= psi[k];
    if (cost < best_cost) {
      best_cost = cost;
      best = k;
    }
  }
  return best;
}

}  // namespace fmg
