// Batch launchers of the flow: map the per-sample integration over a chunk
// of samples on one backend and reduce labels and step counts.
//
// The CPU backend (kernels/cpu/batch.cpp) is the reference; the CUDA backend
// (kernels/cuda/batch.cu) computes the same per-sample functions, one thread
// per sample. Both generate base samples from (seed, sample index), so a
// chunk's results do not depend on chunk size or thread count.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/flow.hpp"

namespace fmg {

/// Bins of the accepted-step histogram; the last bin counts every sample
/// with step_histogram_bins - 1 or more accepted steps.
inline constexpr int step_histogram_bins = 4096;

/// Reductions over the samples of one or more chunks. The sums cannot
/// overflow for 10^12 samples unless a sample averages more than 1.8e7
/// velocity evaluations.
struct FlowTally {
  std::vector<std::uint64_t> label_counts;   ///< Per atom, status ok only.
  std::array<std::uint64_t, 3> status_counts{};  ///< Indexed by SampleStatus.
  std::vector<std::uint64_t> step_histogram;  ///< Accepted steps per sample.
  std::uint64_t accepted_sum = 0;
  std::uint64_t rejected_sum = 0;
  std::uint64_t evaluations_sum = 0;
  std::uint32_t accepted_max = 0;

  explicit FlowTally(int num_atoms = 0)
      : label_counts(static_cast<std::size_t>(num_atoms), 0),
        step_histogram(step_histogram_bins, 0) {}

  /// Adds the counts of `other`, which must have as many atoms.
  void merge(const FlowTally& other);

  /// Counts one sample with its label (-1 for a failed sample).
  void add(const SampleCounters& counters, int label);

  /// Total number of samples counted.
  std::uint64_t samples() const {
    return status_counts[0] + status_counts[1] + status_counts[2];
  }
};

/// Inputs and optional outputs of one chunk, all in host memory, row-major
/// (count x d). A null pointer means "generate" for `starts` and "do not
/// write" for the outputs.
template <class T>
struct FlowChunk {
  std::uint64_t first_index = 0;  ///< Global index of the chunk's first sample.
  std::size_t count = 0;
  const T* starts = nullptr;      ///< Given starting points, or Philox samples.
  T* base_samples = nullptr;      ///< Receives the starting points.
  T* endpoints = nullptr;         ///< Receives the states at t_end.
  std::int32_t* labels = nullptr;  ///< Receives endpoint_label().
};

/// Velocity evaluation scheme of a backend. `direct` runs the per-sample
/// log-sum-exp over the atoms (kernels/mixture.hpp). `matrix` advances a
/// block of samples in lockstep and evaluates their velocities with two
/// matrix products (kernels/cpu/gemm_flow.hpp). `automatic` lets the
/// backend choose from K and d.
enum class VelocityPath { automatic, direct, matrix };

/// Host memory released by the function that matches how it was allocated
/// (std::free, or cudaFreeHost for pinned memory).
using HostAllocation = std::unique_ptr<void, void (*)(void*)>;

/// A backend that integrates chunks of samples of one mixture and problem.
///
/// Chunks run either one at a time through run_chunk, or pipelined: up to
/// max_chunks_in_flight() chunks started with submit_chunk, each completed
/// in submission order by finish_chunk. The default pipeline runs a
/// submitted chunk inside finish_chunk. The CUDA backend overrides it, so
/// that one chunk integrates while the previous chunk's outputs are copied
/// back.
template <class T>
class FlowBackend {
 public:
  /// Drops the chunks still in flight: they reach no tally and their
  /// outputs may be incomplete, but the backend no longer writes to their
  /// buffers once the destructor returns.
  virtual ~FlowBackend() = default;

  /// Integrates every sample of `chunk` and adds its reductions to `tally`.
  /// An empty chunk does nothing. No chunk may be in flight.
  virtual void run_chunk(const FlowChunk<T>& chunk, FlowTally& tally) = 0;

  /// "cpu" or "cuda".
  virtual std::string name() const = 0;

  /// The processor or device, e.g. "NVIDIA H200" or "2 OpenMP threads".
  virtual std::string device() const = 0;

  /// The velocity path that runs: "direct" or "matrix".
  virtual std::string velocity_path() const { return "direct"; }

  /// Maximum number of chunks submitted and not yet finished.
  virtual std::size_t max_chunks_in_flight() const { return 1; }

  /// Starts `chunk` and may return before its work is done. Until the
  /// finish_chunk call that completes it, the backend may read
  /// chunk.starts and write the chunk's outputs, so the caller must keep
  /// those buffers alive and leave them untouched. Throws std::logic_error
  /// when max_chunks_in_flight() chunks are already in flight.
  virtual void submit_chunk(const FlowChunk<T>& chunk) {
    if (pending_.size() >= max_chunks_in_flight()) {
      throw std::logic_error("submit_chunk: " +
                             std::to_string(pending_.size()) +
                             " chunks are already in flight");
    }
    pending_.push_back(chunk);
  }

  /// Completes the oldest chunk in flight: waits until its outputs are
  /// written and adds its reductions to `tally`. Throws std::logic_error
  /// when no chunk is in flight.
  virtual void finish_chunk(FlowTally& tally) {
    if (pending_.empty()) {
      throw std::logic_error("finish_chunk: no chunk is in flight");
    }
    const FlowChunk<T> chunk = pending_.front();
    pending_.pop_front();
    run_chunk(chunk, tally);
  }

  /// Allocates `bytes` of host memory for chunk inputs and outputs; the
  /// CUDA backend returns pinned memory, which its copies need to run
  /// asynchronously. Throws std::bad_alloc when no memory is left.
  virtual HostAllocation allocate_host(std::size_t bytes) {
    HostAllocation memory(nullptr, std::free);
    if (bytes == 0) return memory;
    memory.reset(std::malloc(bytes));
    if (memory == nullptr) throw std::bad_alloc();
    return memory;
  }

 private:
  std::deque<FlowChunk<T>> pending_;
};

/// Mixture data in precision T, owned by the host.
template <class T>
struct HostMixture {
  std::vector<T> atoms;  ///< K x d, row-major.
  std::vector<T> log_weights;
  int dim = 0;

  int num_atoms() const { return static_cast<int>(log_weights.size()); }
  MixtureView<T> view() const {
    return {atoms.data(), log_weights.data(), num_atoms(), dim};
  }
};

/// Creates the OpenMP backend; threads <= 0 uses OpenMP's default. On the
/// matrix path (`path`, see cpu_uses_matrix_path) samples advance in
/// lockstep blocks. Otherwise, with `simd`, dimensions 1 to 8 run on the
/// SIMD lane engine (kernels/cpu/lanes.hpp), and every other case runs the
/// scalar per-sample code.
template <class T>
std::unique_ptr<FlowBackend<T>> make_cpu_flow_backend(
    const HostMixture<T>& mixture, const FlowProblem<T>& problem,
    int threads, bool simd = true,
    VelocityPath path = VelocityPath::automatic);

/// Creates the CUDA backend on the current device; `path` chooses the
/// velocity path as cuda_uses_matrix_path does. Throws fmg::Unavailable
/// when CUDA was not compiled in or no device is present.
template <class T>
std::unique_ptr<FlowBackend<T>> make_cuda_flow_backend(
    const HostMixture<T>& mixture, const FlowProblem<T>& problem,
    VelocityPath path = VelocityPath::automatic);

/// K * d from which the CPU backend's automatic choice takes the matrix
/// path above the lane engine's dimensions. Measured by `fmg_flow_bench
/// --crossover` on two AMD EPYC cores (bench/RESULTS.md): from d = 4 the
/// matrix path was 1.3 to 6 times as fast as the per-sample path at every
/// K >= 10, and about level at K = 1.
inline constexpr long long cpu_matrix_path_min_work = 32;

/// K * d from which the CUDA backend's automatic choice takes the matrix
/// path. NOTE: the crossover has not been measured on a device, so until
/// then `automatic` keeps the direct path and only VelocityPath::matrix
/// selects cuBLAS.
inline constexpr long long cuda_matrix_path_min_work =
    std::numeric_limits<long long>::max();

/// Returns whether the CPU backend takes the matrix path for `path` and a
/// mixture of K = num_atoms atoms in dimension d = dim: always for
/// `matrix`, never for `direct`, and for `automatic` when d is above
/// lanes::max_lane_dim (8) and K * d is at least cpu_matrix_path_min_work.
/// Up to d = 8 the SIMD lane engine was 2 to 6 times as fast as the matrix
/// path at every measured K (1 to 1000).
bool cpu_uses_matrix_path(VelocityPath path, int num_atoms, int dim);

/// Likewise for the CUDA backend, with cuda_matrix_path_min_work and no
/// condition on d.
bool cuda_uses_matrix_path(VelocityPath path, int num_atoms, int dim);

/// Returns whether the CUDA backend can run here; otherwise stores why not
/// in `reason` (when given).
bool cuda_backend_available(std::string* reason = nullptr);

}  // namespace fmg
