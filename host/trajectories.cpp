// Trajectories of a few samples on a uniform time grid, recorded with the
// same per-sample integrators as the batch backends.
#include <algorithm>
#include <limits>
#include <vector>

#include "host/driver.hpp"
#include "host/errors.hpp"
#include "kernels/cpu/scratch_state.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

/// Records states at the grid times t_g = g t_end / (points - 1) that each
/// accepted step passes.
template <class T>
class GridRecorder {
 public:
  using Vec = StridedVec<T>;

  GridRecorder(const FlowField<T>& field, T t_end, int points, int dim,
               double* out)
      : field_(field), t_end_(t_end), points_(points), dim_(dim), out_(out),
        previous_(dim), previous_velocity_(dim), velocity_(dim) {}

  T grid_time(int g) const {
    return g + 1 == points_ ? t_end_ : t_end_ * T(g) / T(points_ - 1);
  }

  void on_start(T t, const Vec& x) {
    for (int j = 0; j < dim_; ++j) previous_[j] = x[j];
    Vec prev{previous_.data(), dim_, 1};
    Vec v{previous_velocity_.data(), dim_, 1};
    field_(t, prev, v);
    previous_t_ = t;
    store(0, [&](int j) { return static_cast<double>(x[j]); });
    next_ = 1;
  }

  /// Cubic Hermite interpolation between the previous and the new state,
  /// with the velocity at both ends.
  void on_fixed_step(T, T t1, const Vec& x) {
    Vec v{velocity_.data(), dim_, 1};
    field_(t1, x, v);
    const T h = t1 - previous_t_;
    while (next_ < points_ && grid_time(next_) <= t1) {
      const T theta = (grid_time(next_) - previous_t_) / h;
      const T h00 = (T(1) + T(2) * theta) * (T(1) - theta) * (T(1) - theta);
      const T h10 = theta * (T(1) - theta) * (T(1) - theta);
      const T h01 = theta * theta * (T(3) - T(2) * theta);
      const T h11 = theta * theta * (theta - T(1));
      store(next_, [&](int j) {
        return static_cast<double>(h00 * previous_[j] +
                                   h10 * h * previous_velocity_[j] +
                                   h01 * x[j] + h11 * h * velocity_[j]);
      });
      ++next_;
    }
    for (int j = 0; j < dim_; ++j) {
      previous_[j] = x[j];
      previous_velocity_[j] = velocity_[j];
    }
    previous_t_ = t1;
  }

  /// Dormand-Prince continuous extension of order 4 (Hairer, Norsett and
  /// Wanner, Solving ODEs I, Section II.6), from the stages of the step.
  template <class Ws>
  void on_dopri5_step(T t0, T h, const Vec& x0, const Ws& ws) {
    const T d1 = T(-12715105075.0 / 11282082432.0);
    const T d3 = T(87487479700.0 / 32700410799.0);
    const T d4 = T(-10690763975.0 / 1880347072.0);
    const T d5 = T(701980252875.0 / 199316789632.0);
    const T d6 = T(-1453857185.0 / 822651844.0);
    const T d7 = T(69997945.0 / 29380423.0);
    const T t1 = t0 + h >= t_end_ ? t_end_ : t0 + h;
    while (next_ < points_ && grid_time(next_) <= t1) {
      const T theta = (grid_time(next_) - t0) / h;
      const T one_minus = T(1) - theta;
      store(next_, [&](int j) {
        const T diff = ws.next[j] - x0[j];
        const T bspl = h * ws.k1[j] - diff;
        const T r5 = h * (d1 * ws.k1[j] + d3 * ws.k3[j] + d4 * ws.k4[j] +
                          d5 * ws.k5[j] + d6 * ws.k6[j] + d7 * ws.k7[j]);
        const T r4 = diff - h * ws.k7[j] - bspl;
        return static_cast<double>(
            x0[j] + theta * (diff + one_minus *
                                        (bspl + theta * (r4 + one_minus * r5))));
      });
      ++next_;
    }
  }

  int recorded() const { return next_; }

 private:
  template <class Value>
  void store(int g, Value value) {
    double* row = out_ + static_cast<std::size_t>(g) * dim_;
    for (int j = 0; j < dim_; ++j) row[j] = value(j);
  }

  FlowField<T> field_;
  T t_end_;
  int points_;
  int dim_;
  double* out_;
  std::vector<T> previous_, previous_velocity_, velocity_;
  T previous_t_ = T(0);
  int next_ = 0;
};

template <class T>
Trajectories record_typed(const Mixture& mixture,
                          const FlowRunOptions& options, std::size_t count,
                          int points, const std::vector<double>* starts) {
  const int d = mixture.dim;
  // Integrated with the same shift as run_flow, so the last point is the
  // endpoint of run_flow's per-sample path.
  const std::vector<double> shift = flow_shift(mixture);
  const HostMixture<T> host = make_host_mixture<T>(shifted_mixture(mixture, shift));
  const MixtureView<T> mix = host.view();
  const FlowProblem<T> problem = make_flow_problem<T>(options, mixture);
  const FlowField<T> field{mix, options.schedule};

  Trajectories result;
  result.count = count;
  result.points = points;
  result.dim = d;
  result.states.assign(count * points * d, 0.0);
  result.times.resize(points);
  for (int g = 0; g < points; ++g) {
    const T t = g + 1 == points ? problem.t_end
                                : problem.t_end * T(g) / T(points - 1);
    result.times[g] = static_cast<double>(t);
  }

  ScratchState<T> state(d);
  StridedVec<T>& x = state.x;
  Workspace<StridedVec<T>>& ws = state.ws;
  for (std::size_t i = 0; i < count; ++i) {
    if (starts != nullptr) {
      for (int j = 0; j < d; ++j) x[j] = static_cast<T>((*starts)[i * d + j]);
    } else {
      philox_base_sample(options.seed, i, x);
    }

    double* out = result.states.data() + i * points * d;
    GridRecorder<T> recorder(field, problem.t_end, points, d, out);
    integrate_sample(mix, problem, x, ws, recorder);
    for (int g = 0; g < recorder.recorded(); ++g) {
      const double b = evaluate_schedule(options.schedule, result.times[g]).b;
      for (int j = 0; j < d; ++j) out[g * d + j] += b * shift[j];
    }
    // A failed sample keeps NaN where it was not recorded, so a plot shows
    // where it stopped.
    for (int g = recorder.recorded(); g < points; ++g) {
      std::fill(out + g * d, out + (g + 1) * d,
                std::numeric_limits<double>::quiet_NaN());
    }
  }
  return result;
}

}  // namespace

Trajectories record_trajectories(const Mixture& mixture,
                                 const FlowRunOptions& options,
                                 std::size_t count, int points,
                                 const std::vector<double>* starts) {
  if (points < 2) {
    throw InvalidArgument("invalid number of trajectory points " +
                          std::to_string(points) + ": it must be at least 2");
  }
  if (options.precision == Precision::float32) {
    return record_typed<float>(mixture, options, count, points, starts);
  }
  return record_typed<double>(mixture, options, count, points, starts);
}

}  // namespace fmg
