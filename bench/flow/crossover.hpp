// Crossover of the CPU backend's two velocity paths: the direct per-sample
// sum over atoms and the lockstep matrix products, timed on one mixture.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "bench/flow/bench_problem.hpp"
#include "host/driver.hpp"

namespace fmg::bench {

/// Smallest sample count of a matrix-path timing: two blocks of 128, so
/// that two threads each advance a full block.
inline constexpr std::uint64_t crossover_matrix_min_samples = 256;

/// Smallest sample count of a direct-path timing. Lower than the matrix
/// path's, so that the direct path's largest points (K d = 10^7, a second
/// or more per sample) finish in a few seconds.
inline constexpr std::uint64_t crossover_direct_min_samples = 16;

/// Times `options` on `problem` with velocity path `path`, starting from
/// the path's minimum sample count and growing N until one run takes at
/// least half of `target_seconds` (the earlier, shorter runs also warm the
/// threads up). Returns a record of the last run: N, wall time, samples
/// and velocity evaluations per second, and the path that ran.
nlohmann::json time_velocity_path(const BenchProblem& problem,
                                  FlowRunOptions options, VelocityPath path,
                                  double target_seconds);

}  // namespace fmg::bench
