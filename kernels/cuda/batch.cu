// CUDA backend of the flow: one thread per sample, base samples generated on
// the device, labels and step counts reduced on the device with CUB and
// Thrust.
#include "kernels/batch.hpp"

#include <cub/device/device_histogram.cuh>
#include <nvtx3/nvtx3.hpp>
#include <thrust/execution_policy.h>
#include <thrust/functional.h>
#include <thrust/reduce.h>
#include <thrust/transform_reduce.h>

#include <algorithm>
#include <string>
#include <vector>

#include "host/errors.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device_buffer.cuh"
#include "kernels/cuda/launch_config.cuh"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

struct NvtxDomain {
  static constexpr char const* name{"fmg"};
};
using ScopedRange = nvtx3::scoped_range_in<NvtxDomain>;

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

  auto run = [&](auto& x, auto& ws) {
    const std::size_t row = i * static_cast<std::size_t>(d);
    if (starts != nullptr) {
      for (int j = 0; j < d; ++j) x[j] = starts[row + j];
    } else {
      philox_base_sample(problem.seed, first_index + i, x);
    }
    if (out.base_samples != nullptr) {
      for (int j = 0; j < d; ++j) out.base_samples[row + j] = x[j];
    }

    const SampleCounters counters = integrate_sample(mix, problem, x, ws);
    const int label = endpoint_label(mix, counters, x);

    if (out.endpoints != nullptr) {
      for (int j = 0; j < d; ++j) out.endpoints[row + j] = x[j];
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
    FMG_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));

    atoms_.resize(mixture.atoms.size());
    log_weights_.resize(mixture.log_weights.size());
    FMG_CUDA_CHECK(cudaMemcpy(atoms_.data(), mixture.atoms.data(),
                              mixture.atoms.size() * sizeof(T),
                              cudaMemcpyHostToDevice));
    FMG_CUDA_CHECK(cudaMemcpy(log_weights_.data(), mixture.log_weights.data(),
                              mixture.log_weights.size() * sizeof(T),
                              cudaMemcpyHostToDevice));
    label_counts_.resize(static_cast<std::size_t>(num_atoms_));
    status_counts_.resize(3);
    step_counts_.resize(step_histogram_bins);
  }

  ~CudaFlowBackend() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  void run_chunk(const FlowChunk<T>& chunk, FlowTally& tally) override {
    if (chunk.count == 0) return;
    ScopedRange range{"fmg::cuda chunk"};
    const std::size_t n = chunk.count;
    const std::size_t values = n * static_cast<std::size_t>(dim_);
    reserve(n);

    const T* d_starts = nullptr;
    if (chunk.starts != nullptr) {
      ScopedRange copy_range{"fmg::cuda copy starts"};
      starts_.resize(values);
      FMG_CUDA_CHECK(cudaMemcpyAsync(starts_.data(), chunk.starts,
                                     values * sizeof(T),
                                     cudaMemcpyHostToDevice, stream_));
      d_starts = starts_.data();
    }
    if (chunk.base_samples != nullptr) base_.resize(values);
    if (chunk.endpoints != nullptr) endpoints_.resize(values);
    if (dim_ > 3) {
      scratch_.resize(values * (workspace_vectors + 1));
    }

    ChunkOutputsView<T> out{
        chunk.base_samples != nullptr ? base_.data() : nullptr,
        chunk.endpoints != nullptr ? endpoints_.data() : nullptr,
        labels_.data(), accepted_.data(), rejected_.data(),
        evaluations_.data(), step_bins_.data(), status_.data()};
    const MixtureView<T> mix{atoms_.data(), log_weights_.data(), num_atoms_,
                             dim_};
    {
      ScopedRange integrate_range{"fmg::cuda integrate"};
      const unsigned blocks = static_cast<unsigned>(
          (n + launch::flow_block_size - 1) / launch::flow_block_size);
      switch (dim_) {
        case 1: launch<1>(blocks, mix, chunk, d_starts, out); break;
        case 2: launch<2>(blocks, mix, chunk, d_starts, out); break;
        case 3: launch<3>(blocks, mix, chunk, d_starts, out); break;
        default: launch<dynamic_dim>(blocks, mix, chunk, d_starts, out); break;
      }
    }

    reduce(n, tally);
    copy_back(chunk, values);
  }

  std::string name() const override { return "cuda"; }
  std::string device() const override { return device_name_; }

 private:
  template <int D>
  void launch(unsigned blocks, const MixtureView<T>& mix,
              const FlowChunk<T>& chunk, const T* d_starts,
              const ChunkOutputsView<T>& out) {
    integrate_chunk_kernel<T, D>
        <<<blocks, launch::flow_block_size, 0, stream_>>>(
            mix, problem_, chunk.first_index, chunk.count, d_starts,
            scratch_.data(), out);
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

  /// Reduces the per-sample outputs of the last chunk and adds them to
  /// `tally`.
  void reduce(std::size_t n, FlowTally& tally) {
    ScopedRange range{"fmg::cuda reduce"};
    const int count = static_cast<int>(n);

    // Scratch for the three histograms, sized for the largest.
    std::size_t bytes_labels = 0, bytes_status = 0, bytes_steps = 0;
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        nullptr, bytes_labels, labels_.data(), label_counts_.data(),
        num_atoms_ + 1, 0, num_atoms_, count, stream_));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        nullptr, bytes_status, status_.data(), status_counts_.data(), 4, 0, 3,
        count, stream_));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        nullptr, bytes_steps, step_bins_.data(), step_counts_.data(),
        step_histogram_bins + 1, 0, step_histogram_bins, count, stream_));
    cub_scratch_.resize(std::max({bytes_labels, bytes_status, bytes_steps}));

    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        cub_scratch_.data(), bytes_labels, labels_.data(),
        label_counts_.data(), num_atoms_ + 1, 0, num_atoms_, count, stream_));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        cub_scratch_.data(), bytes_status, status_.data(),
        status_counts_.data(), 4, 0, 3, count, stream_));
    FMG_CUDA_CHECK(cub::DeviceHistogram::HistogramEven(
        cub_scratch_.data(), bytes_steps, step_bins_.data(),
        step_counts_.data(), step_histogram_bins + 1, 0, step_histogram_bins,
        count, stream_));

    const auto policy = thrust::cuda::par.on(stream_);
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
                                   cudaMemcpyDeviceToHost, stream_));
    FMG_CUDA_CHECK(cudaMemcpyAsync(status.data(), status_counts_.data(),
                                   status.size() * sizeof(unsigned),
                                   cudaMemcpyDeviceToHost, stream_));
    FMG_CUDA_CHECK(cudaMemcpyAsync(steps.data(), step_counts_.data(),
                                   steps.size() * sizeof(unsigned),
                                   cudaMemcpyDeviceToHost, stream_));
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream_));

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

  void copy_back(const FlowChunk<T>& chunk, std::size_t values) {
    ScopedRange range{"fmg::cuda copy outputs"};
    if (chunk.labels != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.labels, labels_.data(),
                                     chunk.count * sizeof(std::int32_t),
                                     cudaMemcpyDeviceToHost, stream_));
    }
    if (chunk.endpoints != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.endpoints, endpoints_.data(),
                                     values * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream_));
    }
    if (chunk.base_samples != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.base_samples, base_.data(),
                                     values * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream_));
    }
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  FlowProblem<T> problem_;
  int dim_;
  int num_atoms_;
  std::string device_name_;
  cudaStream_t stream_ = nullptr;

  detail::DeviceBuffer<T> atoms_, log_weights_;
  detail::DeviceBuffer<T> starts_, base_, endpoints_, scratch_;
  detail::DeviceBuffer<std::int32_t> labels_;
  detail::DeviceBuffer<std::uint32_t> accepted_, rejected_, evaluations_;
  detail::DeviceBuffer<std::uint16_t> step_bins_;
  detail::DeviceBuffer<std::uint8_t> status_;
  detail::DeviceBuffer<unsigned> label_counts_, status_counts_, step_counts_;
  detail::DeviceBuffer<unsigned char> cub_scratch_;
};

}  // namespace

template <class T>
std::unique_ptr<FlowBackend<T>> make_cuda_flow_backend(
    const HostMixture<T>& mixture, const FlowProblem<T>& problem) {
  std::string reason;
  if (!cuda_backend_available(&reason)) throw Unavailable(reason);
  return std::make_unique<CudaFlowBackend<T>>(mixture, problem);
}

template std::unique_ptr<FlowBackend<float>> make_cuda_flow_backend(
    const HostMixture<float>&, const FlowProblem<float>&);
template std::unique_ptr<FlowBackend<double>> make_cuda_flow_backend(
    const HostMixture<double>&, const FlowProblem<double>&);

}  // namespace fmg
