// OpenMP backend of the flow: one sample per loop iteration, each thread
// with its own workspace and tally, merged after the loop, or lockstep
// blocks of samples on the matrix path (kernels/cpu/gemm_flow.hpp).
#include "kernels/batch.hpp"

#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_flow.hpp"
#include "kernels/cpu/lanes.hpp"
#include "kernels/cpu/scratch_state.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {

void FlowTally::merge(const FlowTally& other) {
  if (label_counts.size() < other.label_counts.size()) {
    label_counts.resize(other.label_counts.size(), 0);
  }
  for (std::size_t k = 0; k < other.label_counts.size(); ++k) {
    label_counts[k] += other.label_counts[k];
  }
  for (std::size_t s = 0; s < status_counts.size(); ++s) {
    status_counts[s] += other.status_counts[s];
  }
  for (std::size_t b = 0; b < step_histogram.size(); ++b) {
    step_histogram[b] += other.step_histogram[b];
  }
  accepted_sum += other.accepted_sum;
  rejected_sum += other.rejected_sum;
  evaluations_sum += other.evaluations_sum;
  accepted_max = std::max(accepted_max, other.accepted_max);
}

void FlowTally::add(const SampleCounters& counters, int label) {
  status_counts[static_cast<int>(counters.status)] += 1;
  if (label >= 0) label_counts[static_cast<std::size_t>(label)] += 1;
  const std::uint32_t bin = std::min<std::uint32_t>(
      counters.accepted, static_cast<std::uint32_t>(step_histogram_bins - 1));
  step_histogram[bin] += 1;
  accepted_sum += counters.accepted;
  rejected_sum += counters.rejected;
  evaluations_sum += counters.evaluations;
  accepted_max = std::max(accepted_max, counters.accepted);
}

namespace {

bool uses_matrix_path(VelocityPath path, int num_atoms, int dim,
                      int min_dim, long long min_work) {
  switch (path) {
    case VelocityPath::direct:
      return false;
    case VelocityPath::matrix:
      return true;
    case VelocityPath::automatic:
    default:
      return dim >= min_dim &&
             static_cast<long long>(num_atoms) * dim >= min_work;
  }
}

}  // namespace

bool cpu_uses_matrix_path(VelocityPath path, int num_atoms, int dim) {
  return uses_matrix_path(path, num_atoms, dim, lanes::max_lane_dim + 1,
                          cpu_matrix_path_min_work);
}

bool cuda_uses_matrix_path(VelocityPath path, int num_atoms, int dim) {
  return uses_matrix_path(path, num_atoms, dim, 1, cuda_matrix_path_min_work);
}

namespace {

/// Minimum samples of a chunk per thread of the lane engine; smaller chunks
/// run on fewer threads.
constexpr std::size_t lanes_samples_per_thread = 4096;

/// Per-thread storage for D known at compile time: everything in locals.
template <class T, int D>
struct LocalStorage {
  using Vec = LocalVec<T, D>;
  Vec x;
  Workspace<Vec> ws;

  explicit LocalStorage(int) {}
};

template <class T>
class CpuFlowBackend final : public FlowBackend<T> {
 public:
  CpuFlowBackend(const HostMixture<T>& mixture, const FlowProblem<T>& problem,
                 int threads, bool simd, VelocityPath path)
      : mixture_(mixture), problem_(problem),
        threads_(threads > 0 ? threads : omp_get_max_threads()),
        simd_(simd && mixture.dim <= lanes::max_lane_dim) {
    if (cpu_uses_matrix_path(path, mixture.num_atoms(), mixture.dim)) {
      matrix_ = std::make_unique<gemm::MatrixMixture<T>>(mixture_);
    }
  }

  void run_chunk(const FlowChunk<T>& chunk, FlowTally& tally) override {
    if (chunk.count == 0) return;
    if (matrix_) {
      gemm::run_matrix_chunk(*matrix_, problem_, chunk, threads_, tally);
      return;
    }
    if (simd_) {
      run_lanes(chunk, tally);
      return;
    }
    switch (mixture_.dim) {
      case 1: run<LocalStorage<T, 1>>(chunk, tally); break;
      case 2: run<LocalStorage<T, 2>>(chunk, tally); break;
      case 3: run<LocalStorage<T, 3>>(chunk, tally); break;
      default: run<ScratchState<T>>(chunk, tally); break;
    }
  }

  std::string name() const override { return "cpu"; }

  std::string device() const override {
    std::string engine = "scalar";
    if (matrix_) {
      engine = "Eigen matrix products";
    } else if (simd_) {
      engine = std::string(lanes::lane_instruction_set()) + " lanes";
    }
    return std::to_string(threads_) + (threads_ == 1 ? " OpenMP thread, " : " OpenMP threads, ") +
           engine;
  }

  std::string velocity_path() const override {
    return matrix_ ? "matrix" : "direct";
  }

 private:
  /// Splits the chunk into ranges handed to threads as they free up; each
  /// range runs on one thread's lane engine, whose lanes idle while the
  /// range's last samples finish. Ranges hold 2048 samples, or fewer for
  /// small chunks so that every thread gets about four, but at least 256.
  /// A chunk with fewer than lanes_samples_per_thread samples per thread
  /// uses fewer threads: a thousand samples take about a millisecond, while
  /// starting the second thread took 2 to 20 ms on a two-core virtual
  /// machine.
  void run_lanes(const FlowChunk<T>& chunk, FlowTally& tally) {
    const MixtureView<T> mix = mixture_.view();
    const int team = static_cast<int>(std::clamp<std::size_t>(
        chunk.count / lanes_samples_per_thread, 1,
        static_cast<std::size_t>(threads_)));
    if (team == 1) {
      lanes::run_lanes(lanes::LaneJob<T>{mix, problem_, &chunk, 0, chunk.count}, tally);
      return;
    }
    const std::size_t per_thread_quarter =
        chunk.count / (4 * static_cast<std::size_t>(team)) + 1;
    const std::size_t lane_range =
        std::clamp<std::size_t>((per_thread_quarter + 31) / 32 * 32, 256, 2048);
    const auto ranges = static_cast<std::ptrdiff_t>(
        (chunk.count + lane_range - 1) / lane_range);

#pragma omp parallel num_threads(team)
    {
      FlowTally local(mix.num_atoms);

#pragma omp for schedule(dynamic, 1)
      for (std::ptrdiff_t r = 0; r < ranges; ++r) {
        const std::size_t begin = static_cast<std::size_t>(r) * lane_range;
        const lanes::LaneJob<T> job{mix, problem_, &chunk, begin,
                                    std::min(chunk.count, begin + lane_range)};
        lanes::run_lanes(job, local);
      }

#pragma omp critical(fmg_cpu_flow_tally)
      tally.merge(local);
    }
  }

  template <class Storage>
  void run(const FlowChunk<T>& chunk, FlowTally& tally) {
    const MixtureView<T> mix = mixture_.view();
    const int d = mixture_.dim;
    const auto count = static_cast<std::ptrdiff_t>(chunk.count);
    const T label_scale = endpoint_scale(problem_);

#pragma omp parallel num_threads(threads_)
    {
      Storage storage(d);
      FlowTally local(mix.num_atoms);

#pragma omp for schedule(dynamic, 64)
      for (std::ptrdiff_t i = 0; i < count; ++i) {
        const std::size_t row = static_cast<std::size_t>(i) * d;
        if (chunk.starts != nullptr) {
          for (int j = 0; j < d; ++j) storage.x[j] = chunk.starts[row + j];
        } else {
          philox_base_sample(problem_.seed,
                             chunk.first_index + static_cast<std::uint64_t>(i),
                             storage.x);
        }
        if (chunk.base_samples != nullptr) {
          for (int j = 0; j < d; ++j) chunk.base_samples[row + j] = storage.x[j];
        }

        const SampleCounters counters =
            integrate_sample(mix, problem_, storage.x, storage.ws);
        const int label = endpoint_label(mix, label_scale, counters, storage.x);

        if (chunk.endpoints != nullptr) {
          for (int j = 0; j < d; ++j) chunk.endpoints[row + j] = storage.x[j];
        }
        if (chunk.labels != nullptr) chunk.labels[i] = label;
        local.add(counters, label);
      }

#pragma omp critical(fmg_cpu_flow_tally)
      tally.merge(local);
    }
  }

  HostMixture<T> mixture_;
  FlowProblem<T> problem_;
  int threads_;
  bool simd_;
  std::unique_ptr<gemm::MatrixMixture<T>> matrix_;  ///< Null on the direct path.
};

}  // namespace

template <class T>
std::unique_ptr<FlowBackend<T>> make_cpu_flow_backend(
    const HostMixture<T>& mixture, const FlowProblem<T>& problem,
    int threads, bool simd, VelocityPath path) {
  return std::make_unique<CpuFlowBackend<T>>(mixture, problem, threads, simd,
                                             path);
}

template std::unique_ptr<FlowBackend<float>> make_cpu_flow_backend(
    const HostMixture<float>&, const FlowProblem<float>&, int, bool,
    VelocityPath);
template std::unique_ptr<FlowBackend<double>> make_cpu_flow_backend(
    const HostMixture<double>&, const FlowProblem<double>&, int, bool,
    VelocityPath);

}  // namespace fmg
