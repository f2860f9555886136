// Chunked batch driver of the flow: validates a run, picks the backend,
// integrates N samples chunk by chunk in memory independent of N, and
// streams optional per-sample arrays to sinks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/io/mixture_io.hpp"
#include "kernels/batch.hpp"

namespace fmg {

/// Backend choice for a flow run.
enum class BackendChoice { automatic, cpu, cuda };

/// Options of one flow run under one schedule.
/// Upper bound on FlowRunOptions::threads: far above any core count, and
/// well below the count at which creating the threads exhausts memory for
/// their stacks.
inline constexpr int max_cpu_threads = 1024;

struct FlowRunOptions {
  ScheduleKind schedule = ScheduleKind::linear;
  Method method = Method::dopri5;
  int steps = 100;            ///< Steps of Euler, Heun and RK4.
  double rtol = 1e-6;         ///< Dormand-Prince relative tolerance.
  double atol = 1e-9;         ///< Dormand-Prince absolute tolerance.
  double initial_step = 0.0;  ///< Dormand-Prince first step; 0 = automatic.
  std::uint32_t max_steps = 100000;  ///< Dormand-Prince attempted steps.
  double eps = 1e-3;          ///< The run ends at t_end = 1 - eps.
  std::uint64_t seed = 20260617;
  std::uint64_t num_samples = 1000000;
  BackendChoice backend = BackendChoice::automatic;
  Precision precision = Precision::float64;
  int threads = 0;                   ///< CPU threads; 0 = OpenMP default.
  std::size_t chunk_size = 1 << 20;  ///< Samples per chunk.
  bool progress = true;              ///< Progress lines on stderr.
  bool cpu_simd = true;  ///< CPU backend: SIMD lanes for d <= 8.
  /// Direct per-sample velocities, lockstep matrix products, or the
  /// backend's choice from K * d.
  VelocityPath velocity_path = VelocityPath::automatic;
};

/// Receives one per-sample array chunk by chunk, in sample order.
using ArraySink = std::function<void(const void* data, std::size_t bytes)>;

/// Optional inputs and outputs of a run. Starting points, when given, are
/// num_samples x d values in row-major order and replace the Philox samples.
struct FlowRunIo {
  const std::vector<double>* starts = nullptr;
  ArraySink base_samples;  ///< Receives values of the run's precision.
  ArraySink endpoints;     ///< Likewise.
  ArraySink labels;        ///< Receives int32 labels (-1 for failed samples).
};

/// Measurements and reductions of one flow run.
struct FlowRunResult {
  FlowTally tally;
  double wall_seconds = 0.0;
  std::string backend;  ///< "cpu" or "cuda".
  std::string device;
  std::string velocity_path;  ///< "direct" or "matrix", the path that ran.
};

/// Converts a mixture to precision T, with log weights (-inf for weight 0).
template <class T>
HostMixture<T> make_host_mixture(const Mixture& mixture);

/// Builds the per-sample problem of `options` for `mixture` in precision T;
/// t_end is 1 - eps rounded once to T, and the automatic first
/// Dormand-Prince step is bounded by first_step_limit.
template <class T>
FlowProblem<T> make_flow_problem(const FlowRunOptions& options, const Mixture& mixture);

/// Returns the largest automatic first step for `mixture` under schedule
/// `kind`: the time at which b D = a^2 / 10, with D the diagonal of the
/// bounding box of the atoms of positive weight, or t_end when that time
/// is later or there is only one such atom. Atoms D apart split the
/// samples near b D / a^2 = 1, so a first step within the limit cannot
/// jump over that split; later steps are checked by the error control.
double first_step_limit(const Mixture& mixture, ScheduleKind kind, double t_end);

/// Returns the shift c by which the flow is integrated, as the flow of the
/// atoms mu_k - c. It is the midpoint of the bounding box of the atoms of
/// positive weight when that lies more than the box's diagonal from the
/// origin, else zeros. The flow is equivariant under this shift: x(t) of
/// the shifted atoms plus b(t) c is x(t) of the atoms. Dormand-Prince's
/// relative tolerance then applies to the state's distance from the atoms
/// rather than to their magnitude. Unshifted, atoms 0.1 apart near
/// (1000, 0) lost about 1e-3 of absolute accuracy, enough to bias the basin
/// fractions.
std::vector<double> flow_shift(const Mixture& mixture);

/// `mixture` with every atom moved by -shift.
Mixture shifted_mixture(const Mixture& mixture, const std::vector<double>& shift);

/// Throws fmg::InvalidArgument naming the first invalid option of `options`
/// for a mixture of dimension `dim`, and what would be valid.
void validate_flow_options(const FlowRunOptions& options, int dim);

/// Resolves BackendChoice::automatic to CUDA when a device is present, else
/// the CPU. Throws fmg::Unavailable when CUDA is requested but cannot run.
BackendChoice resolve_backend(BackendChoice choice);

/// Runs the flow for options.num_samples samples of `mixture` (validated
/// here) and returns the reductions. Memory use is independent of
/// num_samples unless the caller's sinks keep the arrays.
FlowRunResult run_flow(const Mixture& mixture, const FlowRunOptions& options,
                       const FlowRunIo& io = {});

/// Integrates the samples of a run on `runner`, a backend built for
/// `mixture` moved by -shift (no shift when `shift` is empty) and
/// `options`, which run_flow validates before it calls this. Up to
/// runner.max_chunks_in_flight() chunks are in flight at once, in host
/// buffers from runner.allocate_host(), and each chunk's outputs go to the
/// sinks of `io` once the backend finishes it, in sample order, with the
/// endpoints moved back by b(t_end) shift.
template <class T>
FlowRunResult run_flow_on(FlowBackend<T>& runner, const Mixture& mixture,
                          const FlowRunOptions& options,
                          const FlowRunIo& io = {},
                          const std::vector<double>& shift = {});

/// Trajectories of the first `count` samples on `points` equally spaced
/// times from 0 to t_end, computed on the CPU with the same per-sample code.
struct Trajectories {
  std::vector<double> times;   ///< `points` entries.
  std::vector<double> states;  ///< count x points x d, row-major.
  std::size_t count = 0;
  int points = 0;
  int dim = 0;
};

/// Records trajectories with the run's method: Dormand-Prince through its
/// fourth-order dense output, the fixed-step methods through cubic Hermite
/// interpolation between steps. Values are computed in the run's precision
/// and returned as double.
Trajectories record_trajectories(const Mixture& mixture,
                                 const FlowRunOptions& options,
                                 std::size_t count, int points,
                                 const std::vector<double>* starts = nullptr);

}  // namespace fmg
