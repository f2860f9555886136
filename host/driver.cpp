#include "host/driver.hpp"
#include "host/format.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "host/errors.hpp"
#include "host/names.hpp"
#include "kernels/nvtx.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

double machine_epsilon(Precision precision) {
  return precision == Precision::float32
             ? static_cast<double>(std::numeric_limits<float>::epsilon())
             : std::numeric_limits<double>::epsilon();
}

/// Smallest eps such that 1 - eps is at least 64 representable steps below
/// 1, so the last steps before t_end are resolved in time.
double min_eps(Precision precision) { return 32.0 * machine_epsilon(precision); }

/// Prints at most one progress line every two seconds to stderr.
class ProgressReporter {
 public:
  ProgressReporter(bool enabled, std::string label, std::uint64_t total)
      : enabled_(enabled), label_(std::move(label)), total_(total),
        start_(Clock::now()), last_(start_) {}

  void update(std::uint64_t done) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::seconds(2) && done < total_) return;
    // A run under two seconds stays silent; a longer one always ends with a
    // line, also when it was a single chunk.
    if (done == total_ && !printed_ && now - start_ < std::chrono::seconds(2)) return;
    last_ = now;
    printed_ = true;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "fmg: %s: %5.1f%% (%llu of %llu samples, %.3g samples/s)\n",
                 label_.c_str(), 100.0 * static_cast<double>(done) / static_cast<double>(total_),
                 static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total_),
                 seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  std::string label_;
  std::uint64_t total_;
  Clock::time_point start_, last_;
  bool printed_ = false;
};

/// Host array of `count` values of U in memory from FlowBackend::allocate_host.
template <class U>
class HostArray {
 public:
  HostArray() = default;
  template <class T>
  HostArray(FlowBackend<T>& backend, std::size_t count)
      : memory_(backend.allocate_host(count * sizeof(U))) {}

  U* data() const { return static_cast<U*>(memory_.get()); }

 private:
  HostAllocation memory_{nullptr, std::free};
};

/// Host arrays of one chunk in flight. Only the arrays that the run
/// requests are allocated.
template <class T>
struct ChunkSlot {
  HostArray<T> starts, base, endpoints;
  HostArray<std::int32_t> labels;
};

/// A chunk submitted to the backend and not yet finished.
struct ChunkInFlight {
  std::uint64_t first = 0;
  std::size_t count = 0;
  std::size_t slot = 0;
};

/// Finishes the chunks still in flight when the run stops early because of
/// an exception, so the backend no longer writes into the slots' buffers
/// when they are freed. Errors while finishing are dropped, because the
/// exception that stopped the run is the one to report.
template <class T>
class DrainOnExit {
 public:
  DrainOnExit(FlowBackend<T>& backend, std::deque<ChunkInFlight>& in_flight,
              int num_atoms)
      : backend_(backend), in_flight_(in_flight), num_atoms_(num_atoms) {}
  DrainOnExit(const DrainOnExit&) = delete;
  DrainOnExit& operator=(const DrainOnExit&) = delete;
  ~DrainOnExit() {
    FlowTally discarded(num_atoms_);
    for (; !in_flight_.empty(); in_flight_.pop_front()) {
      try {
        backend_.finish_chunk(discarded);
      } catch (...) {
      }
    }
  }

 private:
  FlowBackend<T>& backend_;
  std::deque<ChunkInFlight>& in_flight_;
  int num_atoms_;
};

template <class T>
FlowRunResult run_flow_typed(const Mixture& mixture,
                             const FlowRunOptions& options,
                             const FlowRunIo& io) {
  const std::vector<double> shift = flow_shift(mixture);
  const HostMixture<T> host = make_host_mixture<T>(shifted_mixture(mixture, shift));
  const FlowProblem<T> problem = make_flow_problem<T>(options, mixture);
  const BackendChoice backend = resolve_backend(options.backend);
  std::unique_ptr<FlowBackend<T>> runner =
      backend == BackendChoice::cuda
          ? make_cuda_flow_backend(host, problem, options.velocity_path)
          : make_cpu_flow_backend(host, problem, options.threads,
                                  options.cpu_simd, options.velocity_path);
  return run_flow_on(*runner, mixture, options, io, shift);
}

}  // namespace

template <class T>
FlowRunResult run_flow_on(FlowBackend<T>& runner, const Mixture& mixture,
                          const FlowRunOptions& options, const FlowRunIo& io,
                          const std::vector<double>& shift) {
  const int d = mixture.dim;
  // The endpoints move back by b(t_end) shift, in precision T; the vector
  // stays empty when there is nothing to add.
  std::vector<T> endpoint_shift;
  if (std::any_of(shift.begin(), shift.end(), [](double c) { return c != 0.0; })) {
    const double b_end = evaluate_schedule(options.schedule, 1.0 - options.eps).b;
    for (double c : shift) endpoint_shift.push_back(static_cast<T>(b_end * c));
  }
  const std::size_t depth =
      std::max<std::size_t>(1, runner.max_chunks_in_flight());
  // Host arrays hold chunk x d values each, in one set per chunk in flight.
  // In high dimension a cap of 2^26 values per array over all sets (512 MiB
  // in double) overrides a larger --chunk-size.
  constexpr std::uint64_t max_chunk_values = std::uint64_t{1} << 26;
  const std::uint64_t chunk_cap = std::max<std::uint64_t>(
      1, max_chunk_values / static_cast<std::uint64_t>(d) / depth);
  const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(
      {options.chunk_size, options.num_samples, chunk_cap}));
  const std::size_t chunk_values = chunk * static_cast<std::size_t>(d);
  std::vector<ChunkSlot<T>> slots(depth);
  for (ChunkSlot<T>& slot : slots) {
    if (io.starts != nullptr) slot.starts = HostArray<T>(runner, chunk_values);
    if (io.base_samples) slot.base = HostArray<T>(runner, chunk_values);
    if (io.endpoints) slot.endpoints = HostArray<T>(runner, chunk_values);
    if (io.labels) slot.labels = HostArray<std::int32_t>(runner, chunk);
  }

  FlowRunResult result;
  result.tally = FlowTally(mixture.num_atoms());
  result.backend = runner.name();
  result.device = runner.device();
  result.velocity_path = runner.velocity_path();
  ProgressReporter progress(options.progress,
                            std::string(schedule_name(options.schedule)),
                            options.num_samples);

  // Writes the outputs of the oldest chunk in flight while the backend may
  // still integrate the chunks submitted after it.
  std::deque<ChunkInFlight> in_flight;
  const DrainOnExit<T> drain(runner, in_flight, mixture.num_atoms());
  const auto finish_oldest = [&] {
    const ChunkInFlight done = in_flight.front();
    {
      const NvtxRange finish_range("fmg::finish chunk");
      runner.finish_chunk(result.tally);
    }
    in_flight.pop_front();

    const NvtxRange write_range("fmg::write chunk outputs");
    const ChunkSlot<T>& slot = slots[done.slot];
    const std::size_t values = done.count * static_cast<std::size_t>(d);
    if (io.base_samples) io.base_samples(slot.base.data(), values * sizeof(T));
    if (io.endpoints) {
      T* ends = slot.endpoints.data();
      if (!endpoint_shift.empty()) {
        for (std::size_t v = 0; v < values; ++v) ends[v] += endpoint_shift[v % d];
      }
      io.endpoints(ends, values * sizeof(T));
    }
    if (io.labels) {
      io.labels(slot.labels.data(), done.count * sizeof(std::int32_t));
    }
    progress.update(done.first + done.count);
  };

  const auto start = std::chrono::steady_clock::now();
  std::size_t next_slot = 0;
  for (std::uint64_t first = 0; first < options.num_samples; first += chunk) {
    // The slot last held the chunk submitted `depth` chunks ago, which is
    // finished once fewer than `depth` chunks are in flight.
    if (in_flight.size() == depth) finish_oldest();
    const ChunkSlot<T>& slot = slots[next_slot];

    FlowChunk<T> work;
    work.first_index = first;
    work.count = static_cast<std::size_t>(
        std::min<std::uint64_t>(chunk, options.num_samples - first));
    const std::size_t values = work.count * static_cast<std::size_t>(d);
    if (io.starts != nullptr) {
      const double* source = io.starts->data() + first * d;
      std::copy(source, source + values, slot.starts.data());
      work.starts = slot.starts.data();
    }
    work.base_samples = slot.base.data();
    work.endpoints = slot.endpoints.data();
    work.labels = slot.labels.data();

    // Recorded first, so that a chunk whose submission fails part-way is
    // still drained before its buffers are freed.
    in_flight.push_back({first, work.count, next_slot});
    {
      const NvtxRange submit_range("fmg::submit chunk");
      runner.submit_chunk(work);
    }
    next_slot = (next_slot + 1) % depth;
  }
  while (!in_flight.empty()) finish_oldest();

  result.wall_seconds = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();
  return result;
}

template FlowRunResult run_flow_on(FlowBackend<float>&, const Mixture&,
                                   const FlowRunOptions&, const FlowRunIo&,
                                   const std::vector<double>&);
template FlowRunResult run_flow_on(FlowBackend<double>&, const Mixture&,
                                   const FlowRunOptions&, const FlowRunIo&,
                                   const std::vector<double>&);


template <class T>
HostMixture<T> make_host_mixture(const Mixture& mixture) {
  HostMixture<T> host;
  host.dim = mixture.dim;
  host.atoms.assign(mixture.atoms.begin(), mixture.atoms.end());
  const std::vector<double> log_w = log_weights(mixture);
  host.log_weights.assign(log_w.begin(), log_w.end());
  return host;
}

namespace {

/// Bounding box of the atoms of positive weight.
struct WeightedAtomBox {
  std::vector<double> low, high;
  int atoms = 0;  ///< Number of atoms of positive weight.
};

WeightedAtomBox weighted_atom_box(const Mixture& mixture) {
  const int d = mixture.dim;
  WeightedAtomBox box;
  box.low.assign(static_cast<std::size_t>(d), HUGE_VAL);
  box.high.assign(static_cast<std::size_t>(d), -HUGE_VAL);
  for (int k = 0; k < mixture.num_atoms(); ++k) {
    if (!(mixture.weights[static_cast<std::size_t>(k)] > 0.0)) continue;
    ++box.atoms;
    for (int j = 0; j < d; ++j) {
      const double value = mixture.atoms[static_cast<std::size_t>(k) * d + j];
      box.low[j] = std::min(box.low[j], value);
      box.high[j] = std::max(box.high[j], value);
    }
  }
  return box;
}

}  // namespace

std::vector<double> flow_shift(const Mixture& mixture) {
  const int d = mixture.dim;
  const WeightedAtomBox box = weighted_atom_box(mixture);
  std::vector<double> shift(static_cast<std::size_t>(d), 0.0);
  if (box.atoms == 0) return shift;
  double centre2 = 0.0, diagonal2 = 0.0;
  for (int j = 0; j < d; ++j) {
    // Halves first, so that neither sum overflows for coordinates near the
    // largest allowed.
    shift[j] = 0.5 * box.low[j] + 0.5 * box.high[j];
    const double half_width = 0.5 * box.high[j] - 0.5 * box.low[j];
    centre2 += shift[j] * shift[j];
    diagonal2 += 4.0 * half_width * half_width;
  }
  if (!(centre2 > diagonal2)) std::fill(shift.begin(), shift.end(), 0.0);
  return shift;
}

Mixture shifted_mixture(const Mixture& mixture, const std::vector<double>& shift) {
  Mixture moved = mixture;
  if (shift.empty()) return moved;
  const std::size_t d = static_cast<std::size_t>(mixture.dim);
  for (std::size_t i = 0; i < moved.atoms.size(); ++i) moved.atoms[i] -= shift[i % d];
  return moved;
}

double first_step_limit(const Mixture& mixture, ScheduleKind kind, double t_end) {
  // Extent of the atoms of positive weight: the diagonal of their bounding
  // box, at least their largest distance.
  const WeightedAtomBox box = weighted_atom_box(mixture);
  double extent2 = 0.0;
  for (int j = 0; j < mixture.dim && box.atoms > 1; ++j) {
    extent2 += (box.high[j] - box.low[j]) * (box.high[j] - box.low[j]);
  }
  const double extent = std::sqrt(extent2);

  // Samples split between atoms a distance D apart once b D / a^2 reaches
  // order one (the log ratio of two responsibilities moves by about
  // b D |z| / a^2 for a base sample z). The limit is the time where
  // b D = a^2 / 10, found by bisection since b / a^2 increases with t. The
  // bisection runs on log t, because that time can be as small as 1e-76
  // (cosine schedule, atoms 1e150 apart).
  const auto excess = [&](double t) {
    const ScheduleValues<double> v = evaluate_schedule(kind, t);
    return v.b * extent - 0.1 * v.a * v.a;
  };
  if (!(extent > 0.0) || excess(t_end) <= 0.0) return t_end;

  const double smallest = 1e-300;
  if (excess(smallest) > 0.0) return smallest;
  double log_below = std::log(smallest), log_above = std::log(t_end);
  for (int i = 0; i < 100 && log_above - log_below > 1e-4; ++i) {
    const double middle = 0.5 * (log_below + log_above);
    (excess(std::exp(middle)) <= 0.0 ? log_below : log_above) = middle;
  }
  return std::exp(log_below);
}

template <class T>
FlowProblem<T> make_flow_problem(const FlowRunOptions& options, const Mixture& mixture) {
  FlowProblem<T> problem;
  problem.schedule = options.schedule;
  problem.method = options.method;
  problem.steps = options.steps;
  problem.control.rtol = static_cast<T>(options.rtol);
  problem.control.atol = static_cast<T>(options.atol);
  problem.control.initial_step = static_cast<T>(options.initial_step);
  problem.control.max_steps = options.max_steps;
  problem.control.max_first_step = static_cast<T>(
      first_step_limit(mixture, options.schedule, 1.0 - options.eps));
  // 1 - eps rounded once in T: the time grid of every method ends here.
  problem.t_end = static_cast<T>(1.0 - options.eps);
  problem.seed = options.seed;
  return problem;
}

template HostMixture<float> make_host_mixture(const Mixture&);
template HostMixture<double> make_host_mixture(const Mixture&);
template FlowProblem<float> make_flow_problem(const FlowRunOptions&, const Mixture&);
template FlowProblem<double> make_flow_problem(const FlowRunOptions&, const Mixture&);

void validate_flow_options(const FlowRunOptions& options, int dim) {
  const char* precision =
      options.precision == Precision::float32 ? "float" : "double";
  if (options.num_samples == 0) {
    throw InvalidArgument("invalid number of samples 0: it must be at least 1");
  }
  const double smallest_eps = min_eps(options.precision);
  if (!(options.eps > 0.0 && options.eps < 1.0)) {
    throw InvalidArgument("invalid eps " + format_number(options.eps) +
                          ": it must lie in (0, 1); the run ends at t = 1 - eps");
  }
  if (options.eps < smallest_eps) {
    throw InvalidArgument("invalid eps " + format_number(options.eps) +
                          ": below the time resolution of " + precision +
                          " precision; use eps >= " + format_number(smallest_eps));
  }
  if (options.steps < 1) {
    throw InvalidArgument("invalid number of steps " +
                          std::to_string(options.steps) +
                          ": it must be at least 1");
  }
  const double smallest_tolerance = 4.0 * machine_epsilon(options.precision);
  for (const auto& [name, value] :
       {std::pair<const char*, double>{"rtol", options.rtol},
        std::pair<const char*, double>{"atol", options.atol}}) {
    if (!(value > 0.0) || !std::isfinite(value)) {
      throw InvalidArgument(std::string("invalid ") + name + " " +
                            format_number(value) +
                            ": it must be a positive finite number");
    }
    if (value < smallest_tolerance) {
      throw InvalidArgument(std::string("invalid ") + name + " " +
                            format_number(value) + ": " + precision +
                            " precision cannot meet it; use " + name +
                            " >= " + format_number(smallest_tolerance));
    }
  }
  if (!(options.initial_step >= 0.0) || !std::isfinite(options.initial_step) ||
      options.initial_step >= 1.0 - options.eps) {
    throw InvalidArgument("invalid initial step " +
                          format_number(options.initial_step) +
                          ": it must lie in [0, 1 - eps); 0 chooses it "
                          "automatically");
  }
  if (options.max_steps < 1) {
    throw InvalidArgument("invalid maximum number of steps 0: it must be at least 1");
  }
  if (options.chunk_size < 1) {
    throw InvalidArgument("invalid chunk size 0: it must be at least 1");
  }
  if (options.threads < 0 || options.threads > max_cpu_threads) {
    throw InvalidArgument("invalid thread count " +
                          std::to_string(options.threads) + ": it must be 0 (automatic) or from 1 to " +
                          std::to_string(max_cpu_threads));
  }
  if (dim < 1) {
    throw InvalidArgument("invalid dimension " + std::to_string(dim) +
                          ": it must be at least 1");
  }
}

BackendChoice resolve_backend(BackendChoice choice) {
  std::string reason;
  switch (choice) {
    case BackendChoice::cpu:
      return BackendChoice::cpu;
    case BackendChoice::cuda:
      if (!cuda_backend_available(&reason)) {
        throw Unavailable("the CUDA backend was requested but cannot run: " +
                          reason + "; use --backend cpu or --backend auto");
      }
      return BackendChoice::cuda;
    case BackendChoice::automatic:
    default:
      return cuda_backend_available() ? BackendChoice::cuda
                                      : BackendChoice::cpu;
  }
}

FlowRunResult run_flow(const Mixture& mixture, const FlowRunOptions& options,
                       const FlowRunIo& io) {
  if (!schedule_boundary_holds(options.schedule, 1e-12)) {
    throw std::logic_error("schedule " + std::string(schedule_name(options.schedule)) +
                           " violates a(0) = 1, b(0) = 0, a(1) = 0, b(1) = 1");
  }
  validate_mixture(mixture, options.precision);
  validate_flow_options(options, mixture.dim);
  if (io.starts != nullptr &&
      io.starts->size() != options.num_samples * mixture.dim) {
    throw InvalidArgument(
        "starting points hold " + std::to_string(io.starts->size()) +
        " values, but " + std::to_string(options.num_samples) + " samples of dimension " +
        std::to_string(mixture.dim) + " need " +
        std::to_string(options.num_samples * mixture.dim));
  }
  if (options.precision == Precision::float32) {
    return run_flow_typed<float>(mixture, options, io);
  }
  return run_flow_typed<double>(mixture, options, io);
}

}  // namespace fmg
