#include "bench/flow/endpoint_accuracy.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "host/errors.hpp"
#include "kernels/cpu/scratch_state.hpp"
#include "kernels/flow.hpp"
#include "kernels/vec.hpp"

namespace fmg::bench {
namespace {

/// A state and workspace held in locals, for a dimension fixed at compile
/// time.
template <int D>
struct LocalState {
  using Vec = LocalVec<double, D>;
  Vec x;
  Workspace<Vec> ws;

  explicit LocalState(int) {}
};

template <class State>
std::size_t integrate_rows(const MixtureView<double>& mix,
                           const FlowProblem<double>& problem,
                           const std::vector<double>& starts, int threads,
                           std::vector<double>& endpoints) {
  const int d = mix.dim;
  const auto count = static_cast<std::ptrdiff_t>(starts.size() / d);
  std::size_t failures = 0;

#pragma omp parallel num_threads(threads) reduction(+ : failures)
  {
    State state(d);

#pragma omp for schedule(dynamic, 16)
    for (std::ptrdiff_t i = 0; i < count; ++i) {
      const std::size_t row = static_cast<std::size_t>(i) * d;
      for (int j = 0; j < d; ++j) state.x[j] = starts[row + j];
      const SampleCounters counters =
          integrate_sample(mix, problem, state.x, state.ws);
      const bool ok = counters.status == SampleStatus::ok;
      if (!ok) failures += 1;
      for (int j = 0; j < d; ++j) {
        endpoints[row + j] =
            ok ? state.x[j] : std::numeric_limits<double>::quiet_NaN();
      }
    }
  }
  return failures;
}

}  // namespace

ReferenceEndpoints compute_reference_endpoints(const Mixture& mixture,
                                               ScheduleKind schedule,
                                               double eps,
                                               const std::vector<double>& starts,
                                               int threads) {
  const std::vector<double> log_w = log_weights(mixture);
  const MixtureView<double> mix{mixture.atoms.data(), log_w.data(),
                                mixture.num_atoms(), mixture.dim};

  FlowProblem<double> problem;
  problem.schedule = schedule;
  problem.method = Method::dopri5;
  problem.control.rtol = reference_rtol;
  problem.control.atol = reference_atol;
  // Far above the few thousand steps a sample needs at these tolerances.
  problem.control.max_steps = 10000000;
  problem.t_end = 1.0 - eps;

  ReferenceEndpoints result;
  result.endpoints.assign(starts.size(), 0.0);
  const int team = threads > 0 ? threads : omp_get_max_threads();
  const auto start = std::chrono::steady_clock::now();
  switch (mixture.dim) {
    case 1:
      result.failures = integrate_rows<LocalState<1>>(mix, problem, starts,
                                                      team, result.endpoints);
      break;
    case 2:
      result.failures = integrate_rows<LocalState<2>>(mix, problem, starts,
                                                      team, result.endpoints);
      break;
    case 3:
      result.failures = integrate_rows<LocalState<3>>(mix, problem, starts,
                                                      team, result.endpoints);
      break;
    default:
      result.failures = integrate_rows<ScratchState<double>>(mix, problem, starts,
                                                     team, result.endpoints);
      break;
  }
  result.wall_seconds = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();
  return result;
}

EndpointErrors compare_endpoints(const std::vector<double>& endpoints,
                                 const std::vector<double>& reference,
                                 int dim) {
  const std::size_t rows = reference.size() / static_cast<std::size_t>(dim);
  if (endpoints.size() < reference.size()) {
    throw InvalidArgument("cannot compare " +
                          std::to_string(endpoints.size() / dim) +
                          " endpoints with " + std::to_string(rows) +
                          " reference endpoints: too few endpoints");
  }
  std::vector<double> distances;
  distances.reserve(rows);
  EndpointErrors errors;
  for (std::size_t i = 0; i < rows; ++i) {
    double sum = 0.0;
    for (int j = 0; j < dim; ++j) {
      const double diff = endpoints[i * dim + j] - reference[i * dim + j];
      sum += diff * diff;
    }
    const double distance = std::sqrt(sum);
    if (std::isfinite(distance)) {
      distances.push_back(distance);
    } else {
      errors.excluded += 1;
    }
  }

  errors.samples = distances.size();
  if (distances.empty()) {
    errors.max_distance = std::numeric_limits<double>::quiet_NaN();
    errors.median_distance = std::numeric_limits<double>::quiet_NaN();
    return errors;
  }
  errors.max_distance = *std::max_element(distances.begin(), distances.end());
  const std::size_t middle = distances.size() / 2;
  std::nth_element(distances.begin(), distances.begin() + middle,
                   distances.end());
  double median = distances[middle];
  if (distances.size() % 2 == 0) {
    const double below =
        *std::max_element(distances.begin(), distances.begin() + middle);
    median = 0.5 * (below + median);
  }
  errors.median_distance = median;
  return errors;
}

}  // namespace fmg::bench
