#include "bench/flow/crossover.hpp"

#include <algorithm>
#include <string>

#include "host/names.hpp"

namespace fmg::bench {

nlohmann::json time_velocity_path(const BenchProblem& problem,
                                  FlowRunOptions options, VelocityPath path,
                                  double target_seconds) {
  options.velocity_path = path;
  options.progress = false;
  std::uint64_t n = path == VelocityPath::matrix
                        ? crossover_matrix_min_samples
                        : crossover_direct_min_samples;
  // Caps N, so a point where both paths are fast still ends.
  constexpr std::uint64_t max_samples = std::uint64_t{1} << 26;

  FlowRunResult result;
  while (true) {
    options.num_samples = n;
    result = run_flow(problem.mixture, options);
    if (result.wall_seconds >= 0.5 * target_seconds || n >= max_samples) break;
    // Aim at the target from this run's rate, growing by 2 to 16 times.
    const double factor =
        target_seconds / std::max(result.wall_seconds, 1e-4);
    const double grown =
        static_cast<double>(n) * std::clamp(factor, 2.0, 16.0);
    n = std::min<std::uint64_t>(max_samples,
                                static_cast<std::uint64_t>(grown));
  }

  const double wall = result.wall_seconds;
  nlohmann::json record;
  record["problem"] = {{"mixture", problem.name},
                       {"num_atoms", problem.mixture.num_atoms()},
                       {"dim", problem.mixture.dim}};
  record["velocity_path_requested"] =
      path == VelocityPath::matrix ? "matrix" : "direct";
  record["velocity_path"] = result.velocity_path;
  record["backend"] = result.backend;
  record["device"] = result.device;
  record["method"] = std::string(method_name(options.method));
  record["precision"] = std::string(precision_name(options.precision));
  record["n"] = n;
  record["wall_seconds"] = wall;
  record["samples_per_second"] = static_cast<double>(n) / wall;
  record["velocity_evaluations"] = result.tally.evaluations_sum;
  record["velocity_evaluations_per_second"] =
      static_cast<double>(result.tally.evaluations_sum) / wall;
  return record;
}

}  // namespace fmg::bench
