// CUDA backend of the flow: one thread per sample, base samples generated on
// the device, labels and step counts reduced on the device with CUB and
// Thrust.
#include "kernels/batch.hpp"

#include <cub/device/device_histogram.cuh>
#include <thrust/execution_policy.h>
#include <thrust/functional.h>
#include <thrust/reduce.h>
#include <thrust/transform_reduce.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "host/errors.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device_buffer.cuh"
#include "kernels/cuda/gemm_flow.cuh"
#include "kernels/cuda/launch_config.cuh"
#include "kernels/nvtx.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

using ScopedRange = NvtxRange;

/// Device pointers of one chunk's per-sample outputs.
template <class T>
struct ChunkOutputsView {
  T* base_samples;  ///< count x d, or null.
  T* endpoints;     ///< count x d, or null.
  std::int32_t* labels;
  std::uint32_t* accepted;
  std::uint32_t* rejected;
  std::uint32_t* evaluations;
  std::uint16_t* step_bins;  ///< accepted, clamped to the last histogram bin.
  std::uint8_t* status;
};

/// Integrates sample i of the chunk with D fixed at compile time (state and
/// stages in registers), or with D == dynamic_dim using `scratch` laid out
/// as structure-of-arrays: element j of vector v of sample i is at
/// scratch[(v * d + j) * count + i], so neighbouring threads load
/// neighbouring addresses.
template <class T, int D>
__global__ void integrate_chunk_kernel(MixtureView<T> mix,
                                       FlowProblem<T> problem,
                                       std::uint64_t first_index,
                                       std::size_t count,
                                       const T* __restrict__ starts,
                                       T* __restrict__ scratch,
                                       ChunkOutputsView<T> out) {
  const std::size_t i =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const int d = mix.dim;

  // The loops run to x.size(), not d: for LocalVec it is the constant D, so
  // every index is known at compile time and x stays in registers. With the
  // run-time d as bound, nvcc places x in local memory.
  auto run = [&](auto& x, auto& ws) {
    const int n = x.size();
    const std::size_t row = i * static_cast<std::size_t>(n);
    if (starts != nullptr) {
      for (int j = 0; j < n; ++j) x[j] = starts[row + j];
    } else {
      philox_base_sample(problem.seed, first_index + i, x);
    }
    if (out.base_samples != nullptr) {
      for (int j = 0; j < n; ++j) out.base_samples[row + j] = x[j];
    }

    const SampleCounters counters = integrate_sample(mix, problem, x, ws);
    const int label = endpoint_label(mix, counters, x);

    if (out.endpoints != nullptr) {
      for (int j = 0; j < n; ++j) out.endpoints[row + j] = x[j];
    }
    out.labels[i] = label;
    out.accepted[i] = counters.accepted;
    out.rejected[i] = counters.rejected;
    out.evaluations[i] = counters.evaluations;
    out.step_bins[i] = static_cast<std::uint16_t>(
        min(counters.accepted,
            static_cast<std::uint32_t>(step_histogram_bins - 1)));
    out.status[i] = static_cast<std::uint8_t>(counters.status);
  };

  if constexpr (D != dynamic_dim) {
    LocalVec<T, D> x;
    Workspace<LocalVec<T, D>> ws;
    run(x, ws);
  } else {
    auto vec = [&](int v) {
      return StridedVec<T>{
          scratch + static_cast<std::size_t>(v) * d * count + i, d,
          static_cast<std::ptrdiff_t>(count)};
    };
    StridedVec<T> x = vec(0);
    Workspace<StridedVec<T>> ws{vec(1), vec(2), vec(3), vec(4), vec(5),
                                vec(6), vec(7), vec(8), vec(9)};
    run(x, ws);
  }
}

struct WidenToU64 {
  __host__ __device__ std::uint64_t operator()(std::uint32_t v) const {
    return v;
  }
};

/// Dimensions up to this one run kernels with the state in registers;
/// higher ones use the structure-of-arrays scratch.
constexpr int max_register_dim = 3;

/// Device bytes of one sample's per-sample outputs: label, three step
/// counters, histogram bin and status.
constexpr std::size_t output_bytes_per_sample =
    sizeof(std::int32_t) + 3 * sizeof(std::uint32_t) + sizeof(std::uint16_t) +
    sizeof(std::uint8_t);

// CUB's histograms take the sample count as int, and the grid size must fit
// in an unsigned int.
static_assert(launch::max_flow_launch_samples <=
                  static_cast<std::size_t>(std::numeric_limits<int>::max()),
              "a flow launch must fit CUB's int sample count");

template <class T>
class CudaFlowBackend final : public FlowBackend<T> {
 public:
  CudaFlowBackend(const HostMixture<T>& mixture, const FlowProblem<T>& problem)
      : problem_(problem), dim_(mixture.dim),
        num_atoms_(mixture.num_atoms()) {
    ScopedRange range{"fmg::cuda setup"};
    int device = 0;
    FMG_CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp props{};
    FMG_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
    device_name_ = props.name;

    // The copies go on stream_ because a cudaMemcpy from pageable memory may
    // return before its DMA ends, and it runs on the legacy default stream,
    // which kernels on a non-blocking stream do not wait for.
    atoms_.resize(mixture.atoms.size());
    log_weights_.resize(mixture.log_weights.size());
    FMG_CUDA_CHECK(cudaMemcpyAsync(atoms_.data(), mixture.atoms.data(),
                                   mixture.atoms.size() * sizeof(T),
                                   cudaMemcpyHostToDevice, stream_.get()));
    FMG_CUDA_CHECK(cudaMemcpyAsync(
        log_weights_.data(), mixture.log_weights.data(),
        mixture.log_weights.size() * sizeof(T), cudaMemcpyHostToDevice,
        stream_.get()));
    label_counts_.resize(static_cast<std::size_t>(num_atoms_));
    status_counts_.resize(3);
    step_counts_.resize(step_histogram_bins);
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));

    // Launches may use half of the memory that is free now, which leaves
    // room for CUB and Thrust scratch and for other processes.
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    FMG_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    launch_budget_bytes_ = free_bytes / 2;
  }

  void run_chunk(const FlowChunk<T>& chunk, FlowTally& tally) override {
    if (chunk.count == 0) return;
    ScopedRange range{"fmg::cuda chunk"};
    const std::size_t per_launch = samples_per_launch(chunk);
    for (std::size_t offset = 0; offset < chunk.count; offset += per_launch) {
      const std::size_t n = std::min(per_launch, chunk.count - offset);
      run_launch(chunk, offset, n, tally);
    }
  }

  std::string name() const override { return "cuda"; }
  std::string device() const override { return device_name_; }

 private:
  /// Returns how many samples of `chunk` one launch integrates: all of them
  /// unless their device buffers would exceed the memory budget (at d = 4096
  /// in double a sample needs 10 scratch vectors, 320 KiB) or
  /// launch::max_flow_launch_samples.
  std::size_t samples_per_launch(const FlowChunk<T>& chunk) const {
    std::size_t vectors = 0;
    if (chunk.starts != nullptr) vectors += 1;
    if (chunk.base_samples != nullptr) vectors += 1;
    if (chunk.endpoints != nullptr) vectors += 1;
    if (dim_ > max_register_dim) vectors += workspace_vectors + 1;
    const std::size_t bytes_per_sample =
        vectors * static_cast<std::size_t>(dim_) * sizeof(T) +
        output_bytes_per_sample;

    std::size_t limit = std::max<std::size_t>(
        1, launch_budget_bytes_ / bytes_per_sample);
    limit = std::min(limit, launch::max_flow_launch_samples);
    if (detail::flow_launch_sample_limit > 0) {
      limit = std::min(limit, detail::flow_launch_sample_limit);
    }
    return std::min(limit, chunk.count);
  }

  /// Integrates samples offset .. offset + n - 1 of `chunk` in one launch,
  /// adds their reductions to `tally` and copies their outputs to the host.
  void run_launch(const FlowChunk<T>& chunk, std::size_t offset,
                  std::size_t n, FlowTally& tally) {
    const std::size_t d = static_cast<std::size_t>(dim_);
    const std::size_t values = n * d;
    reserve(n);

    const T* d_starts = nullptr;
    if (chunk.starts != nullptr) {
      ScopedRange copy_range{"fmg::cuda copy starts"};
      starts_.resize(values);
      FMG_CUDA_CHECK(cudaMemcpyAsync(starts_.data(), chunk.starts + offset * d,
                                     values * sizeof(T),
                                     cudaMemcpyHostToDevice, stream_.get()));
      d_starts = starts_.data();
    }
    if (chunk.base_samples != nullptr) base_.resize(values);
    if (chunk.endpoints != nullptr) endpoints_.resize(values);
    if (dim_ > max_register_dim) {
      scratch_.resize(values * (workspace_vectors + 1));
    }

    ChunkOutputsView<T> out{
        chunk.base_samples != nullptr ? base_.data() : nullptr,
        chunk.endpoints != nullptr ? endpoints_.data() : nullptr,
        labels_.data(), accepted_.data(), rejected_.data(),
        evaluations_.data(), step_bins_.data(), status_.data()};
    const MixtureView<T> mix{atoms_.data(), log_weights_.data(), num_atoms_,
                             dim_};
    const std::uint64_t first_index = chunk.first_index + offset;
    {
      ScopedRange integrate_range{"fmg::cuda integrate"};
      const unsigned blocks = static_cast<unsigned>(
          (n + launch::flow_block_size - 1) / launch::flow_block_size);
      switch (dim_) {
        case 1: launch<1>(blocks, mix, first_index, n, d_starts, out); break;
        case 2: launch<2>(blocks, mix, first_index, n, d_starts, out); break;
        case 3: launch<3>(blocks, mix, first_index, n, d_starts, out); break;
        default:
          launch<dynamic_dim>(blocks, mix, first_index, n, d_starts, out);
          break;
      }
    }

    reduce(n, tally);
    copy_back(chunk, offset, n);
  }

  template <int D>
  void launch(unsigned blocks, const MixtureView<T>& mix,
              std::uint64_t first_index, std::size_t n, const T* d_starts,
              const ChunkOutputsView<T>& out) {
    static_assert(D == dynamic_dim || D <= max_register_dim,
                  "register kernels exist for dimensions 1 to 3 only");
    integrate_chunk_kernel<T, D>
        <<<blocks, launch::flow_block_size, 0, stream_.get()>>>(
            mix, problem_, first_index, n, d_starts, scratch_.data(), out);
    FMG_CUDA_CHECK_LAUNCH();
  }

  void reserve(std::size_t n) {
    labels_.resize(n);
    accepted_.resize(n);
    rejected_.resize(n);
    evaluations_.resize(n);
    step_bins_.resize(n);
    status_.resize(n);
  }

  /// Reduces the per-sample outputs of the last launch (n samples) and adds
  /// them to `tally`. Failed samples carry label -1, below the histogram's
  /// lowest level, so CUB leaves them out of the label counts.
  void reduce(std::size_t n, FlowTally& tally) {
    ScopedRange range{"fmg::cuda reduce"};
    const int count = static_cast<int>(n);
    const cudaStream_t stream = stream_.get();

    // Scratch for the three histograms, sized for the largest. Each
    // HistogramEven has num_levels = bins + 1 and an exclusive upper level,
    // and zeroes its counters before counting.
    std::size_t bytes_labels = 0, bytes_status = 0, bytes_steps = 0;
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        nullptr, bytes_labels, labels_.data(), label_counts_.data(),
        num_atoms_ + 1, 0, num_atoms_, count, stream));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        nullptr, bytes_status, status_.data(), status_counts_.data(), 4, 0, 3,
        count, stream));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        nullptr, bytes_steps, step_bins_.data(), step_counts_.data(),
        step_histogram_bins + 1, 0, step_histogram_bins, count, stream));
    cub_scratch_.resize(std::max({bytes_labels, bytes_status, bytes_steps}));

    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        cub_scratch_.data(), bytes_labels, labels_.data(),
        label_counts_.data(), num_atoms_ + 1, 0, num_atoms_, count, stream));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        cub_scratch_.data(), bytes_status, status_.data(),
        status_counts_.data(), 4, 0, 3, count, stream));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        cub_scratch_.data(), bytes_steps, step_bins_.data(),
        step_counts_.data(), step_histogram_bins + 1, 0, step_histogram_bins,
        count, stream));

    // Each Thrust reduction returns its value to the host, so it waits for
    // the stream; Thrust throws thrust::system_error when one fails.
    const auto policy = thrust::cuda::par.on(stream);
    const std::uint64_t accepted_sum = thrust::transform_reduce(
        policy, accepted_.data(), accepted_.data() + n, WidenToU64{},
        std::uint64_t{0}, thrust::plus<std::uint64_t>());
    const std::uint64_t rejected_sum = thrust::transform_reduce(
        policy, rejected_.data(), rejected_.data() + n, WidenToU64{},
        std::uint64_t{0}, thrust::plus<std::uint64_t>());
    const std::uint64_t evaluations_sum = thrust::transform_reduce(
        policy, evaluations_.data(), evaluations_.data() + n, WidenToU64{},
        std::uint64_t{0}, thrust::plus<std::uint64_t>());
    const std::uint32_t accepted_max =
        thrust::reduce(policy, accepted_.data(), accepted_.data() + n,
                       std::uint32_t{0}, thrust::maximum<std::uint32_t>());

    std::vector<unsigned> labels(static_cast<std::size_t>(num_atoms_));
    std::vector<unsigned> status(3);
    std::vector<unsigned> steps(step_histogram_bins);
    FMG_CUDA_CHECK(cudaMemcpyAsync(labels.data(), label_counts_.data(),
                                   labels.size() * sizeof(unsigned),
                                   cudaMemcpyDeviceToHost, stream));
    FMG_CUDA_CHECK(cudaMemcpyAsync(status.data(), status_counts_.data(),
                                   status.size() * sizeof(unsigned),
                                   cudaMemcpyDeviceToHost, stream));
    FMG_CUDA_CHECK(cudaMemcpyAsync(steps.data(), step_counts_.data(),
                                   steps.size() * sizeof(unsigned),
                                   cudaMemcpyDeviceToHost, stream));
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream));

    for (std::size_t k = 0; k < labels.size(); ++k) {
      tally.label_counts[k] += labels[k];
    }
    for (std::size_t s = 0; s < 3; ++s) tally.status_counts[s] += status[s];
    for (std::size_t b = 0; b < steps.size(); ++b) {
      tally.step_histogram[b] += steps[b];
    }
    tally.accepted_sum += accepted_sum;
    tally.rejected_sum += rejected_sum;
    tally.evaluations_sum += evaluations_sum;
    tally.accepted_max = std::max(tally.accepted_max, accepted_max);
  }

  /// Copies the requested outputs of the last launch (samples offset ..
  /// offset + n - 1 of `chunk`) to the host and waits for them.
  void copy_back(const FlowChunk<T>& chunk, std::size_t offset,
                 std::size_t n) {
    ScopedRange range{"fmg::cuda copy outputs"};
    const std::size_t d = static_cast<std::size_t>(dim_);
    const std::size_t values = n * d;
    const cudaStream_t stream = stream_.get();
    if (chunk.labels != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.labels + offset, labels_.data(),
                                     n * sizeof(std::int32_t),
                                     cudaMemcpyDeviceToHost, stream));
    }
    if (chunk.endpoints != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.endpoints + offset * d,
                                     endpoints_.data(), values * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream));
    }
    if (chunk.base_samples != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.base_samples + offset * d,
                                     base_.data(), values * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream));
    }
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  FlowProblem<T> problem_;
  int dim_;
  int num_atoms_;
  std::string device_name_;
  std::size_t launch_budget_bytes_ = 0;

  detail::DeviceBuffer<T> atoms_, log_weights_;
  detail::DeviceBuffer<T> starts_, base_, endpoints_, scratch_;
  detail::DeviceBuffer<std::int32_t> labels_;
  detail::DeviceBuffer<std::uint32_t> accepted_, rejected_, evaluations_;
  detail::DeviceBuffer<std::uint16_t> step_bins_;
  detail::DeviceBuffer<std::uint8_t> status_;
  detail::DeviceBuffer<unsigned> label_counts_, status_counts_, step_counts_;
  detail::DeviceBuffer<unsigned char> cub_scratch_;
  // Declared last, so it is destroyed first: its destructor waits for the
  // stream's work before the buffers above are freed.
  detail::CudaStream stream_;
};

}  // namespace

template <class T>
std::unique_ptr<FlowBackend<T>> make_cuda_flow_backend(
    const HostMixture<T>& mixture, const FlowProblem<T>& problem,
    VelocityPath path) {
  std::string reason;
  if (!cuda_backend_available(&reason)) throw Unavailable(reason);
  if (cuda_uses_matrix_path(path, mixture.num_atoms(), mixture.dim)) {
    return gemm::make_cuda_matrix_flow_backend(mixture, problem);
  }
  return std::make_unique<CudaFlowBackend<T>>(mixture, problem);
}

template std::unique_ptr<FlowBackend<float>> make_cuda_flow_backend(
    const HostMixture<float>&, const FlowProblem<float>&, VelocityPath);
template std::unique_ptr<FlowBackend<double>> make_cuda_flow_backend(
    const HostMixture<double>&, const FlowProblem<double>&, VelocityPath);

}  // namespace fmg
