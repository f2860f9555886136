// Lockstep integration on the device with cuBLAS products. The state of a
// batch of samples lives in row-major (n x d) device matrices. A list of
// the unfinished rows, rebuilt after every step, selects the rows that the
// elementwise kernels and the products work on. Per-sample scalars (time,
// step, counters, status) follow kernels/integrators.hpp row by row.
//
// NOTE: compiled for sm_80 and sm_90 but not yet run on a device. Where one
// is present, tests/core/test_cuda_gemm_flow.cpp compares it with the CPU.
#include "kernels/cuda/gemm_flow.cuh"

#include <cublas_v2.h>
#include <thrust/copy.h>
#include <thrust/execution_policy.h>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device_buffer.cuh"
#include "kernels/cuda/gemm_flow_kernels.cuh"
#include "kernels/nvtx.hpp"
#include "kernels/shifted_atoms.hpp"

namespace fmg::gemm {
namespace {

void check_cublas(cublasStatus_t status, const char* call, const char* file,
                  int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) +
                           ": " + call +
                           " failed: " + cublasGetStatusString(status));
}

#define FMG_CUBLAS_CHECK(call) check_cublas((call), #call, __FILE__, __LINE__)

using namespace lockstep;

/// Largest share of the device memory free at construction that one batch
/// may use; the rest stays for cuBLAS workspace and other processes.
constexpr double batch_memory_share = 0.5;

// cuBLAS entry points by precision.
cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t op_a,
                    cublasOperation_t op_b, int m, int n, int k, const float* a,
                    int lda, const float* b, int ldb, float* c, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSgemm(handle, op_a, op_b, m, n, k, &one, a, lda, b, ldb, &zero,
                     c, ldc);
}

cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t op_a,
                    cublasOperation_t op_b, int m, int n, int k,
                    const double* a, int lda, const double* b, int ldb,
                    double* c, int ldc) {
  const double one = 1.0, zero = 0.0;
  return cublasDgemm(handle, op_a, op_b, m, n, k, &one, a, lda, b, ldb, &zero,
                     c, ldc);
}

template <class T>
class CudaMatrixFlowBackend final : public FlowBackend<T> {
 public:
  CudaMatrixFlowBackend(const HostMixture<T>& mixture,
                        const FlowProblem<T>& problem)
      : problem_(problem), dim_(mixture.dim), num_atoms_(mixture.num_atoms()) {
    const NvtxRange range{"fmg::cuda matrix setup"};
    int device = 0;
    FMG_CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp props{};
    FMG_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
    device_name_ = props.name;

    FMG_CUBLAS_CHECK(cublasCreate(&handle_));
    FMG_CUBLAS_CHECK(cublasSetStream(handle_, stream_.get()));
    // The default mode keeps at least the requested mantissa bits, so
    // single-precision products never drop to TF32, whose 10 bits the
    // 1 / a^2 factor of the logits would amplify.
    FMG_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));

    upload_mixture(mixture);

    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    FMG_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::size_t d = static_cast<std::size_t>(dim_);
    const std::size_t k = static_cast<std::size_t>(num_atoms_);
    // State, nine stage vectors, starts, base and endpoints (13 d), the
    // compact centred rows and means (2 d), the logits (K), and scalars.
    const std::size_t bytes_per_row =
        (15 * d + k) * sizeof(T) + sizeof(RowState<T>) + 3 * sizeof(T) +
        sizeof(int) + 1 + sizeof(ScheduleValues<T>) + 5 * sizeof(std::uint32_t);
    const auto budget = static_cast<std::size_t>(
        batch_memory_share * static_cast<double>(free_bytes));
    // cuBLAS takes int dimensions, and m K must fit the logits' int ldc
    // products, so a batch also stays below 2^31 / K rows.
    const std::size_t int_limit =
        static_cast<std::size_t>(INT32_MAX) / std::max<std::size_t>(k, d);
    max_batch_ =
        std::max<std::size_t>(1, std::min(budget / bytes_per_row, int_limit));
  }

  ~CudaMatrixFlowBackend() override {
    // The stream's destructor waits for the stream afterwards.
    cudaStreamSynchronize(stream_.get());
    cublasDestroy(handle_);
  }

  CudaMatrixFlowBackend(const CudaMatrixFlowBackend&) = delete;
  CudaMatrixFlowBackend& operator=(const CudaMatrixFlowBackend&) = delete;

  void run_chunk(const FlowChunk<T>& chunk, FlowTally& tally) override {
    if (chunk.count == 0) return;
    const NvtxRange range{"fmg::cuda matrix chunk"};
    for (std::size_t offset = 0; offset < chunk.count; offset += max_batch_) {
      const std::size_t n = std::min(max_batch_, chunk.count - offset);
      run_batch(chunk, offset, n, tally);
    }
  }

  std::string name() const override { return "cuda"; }
  std::string device() const override {
    return device_name_ + ", cuBLAS matrix products";
  }
  std::string velocity_path() const override { return "matrix"; }

 private:
  void upload_mixture(const HostMixture<T>& mixture) {
    const ShiftedAtoms<T> shifted = shift_atoms(mixture);

    auto upload = [this](detail::DeviceBuffer<T>& buffer,
                         const std::vector<T>& values) {
      buffer.resize(values.size());
      FMG_CUDA_CHECK(cudaMemcpyAsync(buffer.data(), values.data(),
                                     values.size() * sizeof(T),
                                     cudaMemcpyHostToDevice, stream_.get()));
    };
    upload(atoms_, mixture.atoms);
    upload(log_weights_, mixture.log_weights);
    upload(shifted_, shifted.atoms);
    upload(center_, shifted.center);
    upload(half_norms_, shifted.half_norms);
    // The host vectors above are pageable, so wait before they go.
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream_.get()));
  }

  MixtureView<T> view() const {
    return {atoms_.data(), log_weights_.data(), num_atoms_, dim_};
  }

  /// Rebuilds the list of unfinished rows among the first n and returns
  /// its length; waits for the stream.
  int rebuild_rows(std::size_t n) {
    const auto policy = thrust::cuda::par.on(stream_.get());
    int* end =
        thrust::copy_if(policy, thrust::counting_iterator<int>(0),
                        thrust::counting_iterator<int>(static_cast<int>(n)),
                        state_.data(), rows_.data(), IsActive<T>{});
    return static_cast<int>(end - rows_.data());
  }

  /// Velocity of the m listed rows of x at times_ into the same rows of v.
  void evaluate(int m, T* x, T* v) {
    if (m == 0) return;
    const cudaStream_t stream = stream_.get();
    const int d = dim_;
    const int k = num_atoms_;
    const std::size_t elements = static_cast<std::size_t>(m) * d;

    schedule_rows_kernel<T><<<blocks_for(m), block_size, 0, stream>>>(
        rows_.data(), m, times_.data(), problem_.schedule, schedules_.data());
    FMG_CUDA_CHECK_LAUNCH();
    center_rows_kernel<T><<<blocks_for(elements), block_size, 0, stream>>>(
        x, rows_.data(), m, d, center_.data(), schedules_.data(),
        centered_.data());
    FMG_CUDA_CHECK_LAUNCH();

    // Row-major L (m x K) = C M'^T is column-major L^T (K x m) = M' C^T,
    // where the row-major M' (K x d) is the column-major d x K matrix.
    FMG_CUBLAS_CHECK(gemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, k, m, d,
                          shifted_.data(), d, centered_.data(), d,
                          logits_.data(), k));
    softmax_rows_kernel<T><<<static_cast<unsigned>(m), block_size, 0, stream>>>(
        logits_.data(), k, log_weights_.data(), half_norms_.data(),
        schedules_.data(), fallback_.data());
    FMG_CUDA_CHECK_LAUNCH();
    // Row-major means (m x d) = Gamma M' is column-major M'^T Gamma^T.
    FMG_CUBLAS_CHECK(gemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, d, m, k,
                          shifted_.data(), d, logits_.data(), k, means_.data(),
                          d));

    velocity_rows_kernel<T><<<blocks_for(elements), block_size, 0, stream>>>(
        rows_.data(), m, d, center_.data(), centered_.data(), means_.data(),
        schedules_.data(), fallback_.data(), v);
    FMG_CUDA_CHECK_LAUNCH();
    fallback_rows_kernel<T><<<blocks_for(m), block_size, 0, stream>>>(
        view(), problem_.schedule, rows_.data(), m, times_.data(),
        fallback_.data(), x, v);
    FMG_CUDA_CHECK_LAUNCH();
  }

  void fill_times(int m, T value) {
    fill_times_kernel<T><<<blocks_for(m), block_size, 0, stream_.get()>>>(
        rows_.data(), m, value, times_.data());
    FMG_CUDA_CHECK_LAUNCH();
  }

  void axpy(int m, const T* x, T coef, const T* k, T* out) {
    const std::size_t elements = static_cast<std::size_t>(m) * dim_;
    axpy_rows_kernel<T><<<blocks_for(elements), block_size, 0, stream_.get()>>>(
        rows_.data(), m, dim_, x, coef, k, out);
    FMG_CUDA_CHECK_LAUNCH();
  }

  T* vec(int v) {
    return vectors_.data() + static_cast<std::size_t>(v) * batch_ * dim_;
  }

  void reserve(std::size_t n) {
    const std::size_t d = static_cast<std::size_t>(dim_);
    batch_ = n;
    // x, k1 .. k7, stage and next, each n x d.
    vectors_.resize(10 * n * d);
    centered_.resize(n * d);
    means_.resize(n * d);
    logits_.resize(n * static_cast<std::size_t>(num_atoms_));
    state_.resize(n);
    rows_.resize(n);
    times_.resize(n);
    schedules_.resize(n);
    fallback_.resize(n);
    labels_.resize(n);
    counters_.resize(4 * n);
  }

  void run_batch(const FlowChunk<T>& chunk, std::size_t offset, std::size_t n,
                 FlowTally& tally) {
    const std::size_t d = static_cast<std::size_t>(dim_);
    const cudaStream_t stream = stream_.get();
    reserve(n);
    const T* d_starts = nullptr;
    if (chunk.starts != nullptr) {
      starts_.resize(n * d);
      FMG_CUDA_CHECK(cudaMemcpyAsync(starts_.data(), chunk.starts + offset * d,
                                     n * d * sizeof(T), cudaMemcpyHostToDevice,
                                     stream));
      d_starts = starts_.data();
    }
    T* d_base = nullptr;
    if (chunk.base_samples != nullptr) {
      base_.resize(n * d);
      d_base = base_.data();
    }
    load_kernel<T><<<blocks_for(n), block_size, 0, stream>>>(
        problem_.seed, chunk.first_index + offset, static_cast<int>(n), dim_,
        d_starts, vec(0), d_base, state_.data());
    FMG_CUDA_CHECK_LAUNCH();

    {
      const NvtxRange range{"fmg::cuda matrix integrate"};
      if (problem_.method == Method::dopri5) {
        integrate_dopri5_batch(n);
      } else {
        integrate_fixed_batch(n);
      }
    }

    finish_kernel<T><<<blocks_for(n), block_size, 0, stream>>>(
        view(), endpoint_scale(problem_), static_cast<int>(n), vec(0), state_.data(), labels_.data(),
        counters_.data());
    FMG_CUDA_CHECK_LAUNCH();
    copy_back(chunk, offset, n, tally);
  }

  void integrate_fixed_batch(std::size_t n) {
    T *x = vec(0), *k1 = vec(1), *k2 = vec(2), *k3 = vec(3), *k4 = vec(4),
      *stage = vec(8);
    const Method method = problem_.method;
    const int steps = problem_.steps;
    const T t_end = problem_.t_end;
    std::uint32_t per_step = 4;
    if (method == Method::euler) per_step = 1;
    if (method == Method::heun) per_step = 2;
    int m = rebuild_rows(n);
    for (int step = 0; step < steps && m > 0; ++step) {
      const T t0 = t_end * T(step) / T(steps);
      const T t1 = step + 1 == steps ? t_end : t_end * T(step + 1) / T(steps);
      const T h = t1 - t0;
      const std::size_t elements = static_cast<std::size_t>(m) * dim_;
      fill_times(m, t0);
      evaluate(m, x, k1);
      if (method == Method::euler) {
        axpy(m, x, h, k1, x);
      } else if (method == Method::heun) {
        axpy(m, x, h, k1, stage);
        fill_times(m, t1);
        evaluate(m, stage, k2);
        heun_update_kernel<T>
            <<<blocks_for(elements), block_size, 0, stream_.get()>>>(
                rows_.data(), m, dim_, T(0.5) * h, k1, k2, x);
        FMG_CUDA_CHECK_LAUNCH();
      } else {
        const T half_h = T(0.5) * h;
        fill_times(m, math::min(t0 + half_h, t1));
        axpy(m, x, half_h, k1, stage);
        evaluate(m, stage, k2);
        axpy(m, x, half_h, k2, stage);
        evaluate(m, stage, k3);
        axpy(m, x, h, k3, stage);
        fill_times(m, t1);
        evaluate(m, stage, k4);
        rk4_update_kernel<T>
            <<<blocks_for(elements), block_size, 0, stream_.get()>>>(
                rows_.data(), m, dim_, h / T(6), k1, k2, k3, k4, x);
        FMG_CUDA_CHECK_LAUNCH();
      }
      finish_fixed_step_kernel<T>
          <<<blocks_for(m), block_size, 0, stream_.get()>>>(
              rows_.data(), m, dim_, per_step, x, state_.data());
      FMG_CUDA_CHECK_LAUNCH();
      m = rebuild_rows(n);
    }
  }

  /// Writes the argument of Dormand-Prince stage S (7: the proposal) of
  /// the m listed rows into `out` and their velocity there into `k_out`.
  template <int S>
  void dopri5_stage(int m, T* out, T* k_out) {
    const std::size_t elements = static_cast<std::size_t>(m) * dim_;
    dopri5_stage_kernel<T, S>
        <<<blocks_for(elements), block_size, 0, stream_.get()>>>(
            rows_.data(), m, dim_, vec(0), vec(1), vec(2), vec(3), vec(4),
            vec(5), vec(6), state_.data(), out, times_.data());
    FMG_CUDA_CHECK_LAUNCH();
    evaluate(m, out, k_out);
  }

  void integrate_dopri5_batch(std::size_t n) {
    T *x = vec(0), *k1 = vec(1), *k2 = vec(2), *k3 = vec(3), *k4 = vec(4),
      *k5 = vec(5), *k6 = vec(6), *k7 = vec(7), *stage = vec(8), *next = vec(9);
    const cudaStream_t stream = stream_.get();
    const StepControl<T>& control = problem_.control;
    const T t_end = problem_.t_end;

    int m = rebuild_rows(n);
    fill_times(m, T(0));
    evaluate(m, x, k1);
    check_first_velocity_kernel<T><<<blocks_for(m), block_size, 0, stream>>>(
        rows_.data(), m, dim_, k1, control.initial_step, state_.data());
    FMG_CUDA_CHECK_LAUNCH();
    m = rebuild_rows(n);
    if (!(control.initial_step > T(0)) && m > 0) {
      first_step_guess_kernel<T><<<blocks_for(m), block_size, 0, stream>>>(
          rows_.data(), m, dim_, control, t_end, x, k1, stage, times_.data(),
          state_.data());
      FMG_CUDA_CHECK_LAUNCH();
      evaluate(m, stage, k2);
      first_step_finish_kernel<T><<<blocks_for(m), block_size, 0, stream>>>(
          rows_.data(), m, dim_, control, x, k1, k2, state_.data());
      FMG_CUDA_CHECK_LAUNCH();
    }

    while (m > 0) {
      begin_step_kernel<T><<<blocks_for(m), block_size, 0, stream>>>(
          rows_.data(), m, t_end, state_.data());
      FMG_CUDA_CHECK_LAUNCH();
      dopri5_stage<2>(m, stage, k2);
      dopri5_stage<3>(m, stage, k3);
      dopri5_stage<4>(m, stage, k4);
      dopri5_stage<5>(m, stage, k5);
      dopri5_stage<6>(m, stage, k6);
      dopri5_stage<7>(m, next, k7);
      const std::size_t threads = static_cast<std::size_t>(m) * 32;
      end_step_kernel<T><<<blocks_for(threads), block_size, 0, stream>>>(
          rows_.data(), m, dim_, control, t_end, x, k1, k3, k4, k5, k6, k7,
          next, state_.data());
      FMG_CUDA_CHECK_LAUNCH();
      m = rebuild_rows(n);
    }
  }

  void copy_back(const FlowChunk<T>& chunk, std::size_t offset, std::size_t n,
                 FlowTally& tally) {
    const std::size_t d = static_cast<std::size_t>(dim_);
    const cudaStream_t stream = stream_.get();
    std::vector<std::int32_t> labels(n);
    std::vector<std::uint32_t> counters(4 * n);
    FMG_CUDA_CHECK(cudaMemcpyAsync(labels.data(), labels_.data(),
                                   n * sizeof(std::int32_t),
                                   cudaMemcpyDeviceToHost, stream));
    FMG_CUDA_CHECK(cudaMemcpyAsync(counters.data(), counters_.data(),
                                   4 * n * sizeof(std::uint32_t),
                                   cudaMemcpyDeviceToHost, stream));
    if (chunk.endpoints != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.endpoints + offset * d, vec(0),
                                     n * d * sizeof(T), cudaMemcpyDeviceToHost,
                                     stream));
    }
    if (chunk.base_samples != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.base_samples + offset * d,
                                     base_.data(), n * d * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream));
    }
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream));

    // Per-sample counts are tallied on the host: n small records next to
    // O(K d) work per sample and evaluation on this path.
    for (std::size_t i = 0; i < n; ++i) {
      SampleCounters c;
      c.accepted = counters[4 * i];
      c.rejected = counters[4 * i + 1];
      c.evaluations = counters[4 * i + 2];
      c.status = static_cast<SampleStatus>(counters[4 * i + 3]);
      tally.add(c, labels[i]);
      if (chunk.labels != nullptr) chunk.labels[offset + i] = labels[i];
    }
  }

  FlowProblem<T> problem_;
  int dim_;
  int num_atoms_;
  std::string device_name_;
  std::size_t max_batch_ = 1;
  std::size_t batch_ = 0;  ///< Rows of the current batch (stride of vec()).
  cublasHandle_t handle_ = nullptr;

  detail::DeviceBuffer<T> atoms_, log_weights_, shifted_, center_, half_norms_;
  detail::DeviceBuffer<T> vectors_, centered_, means_, logits_, times_;
  detail::DeviceBuffer<T> starts_, base_;
  detail::DeviceBuffer<RowState<T>> state_;
  detail::DeviceBuffer<int> rows_;
  detail::DeviceBuffer<ScheduleValues<T>> schedules_;
  detail::DeviceBuffer<std::uint8_t> fallback_;
  detail::DeviceBuffer<std::int32_t> labels_;
  detail::DeviceBuffer<std::uint32_t> counters_;
  // Declared last, so it is destroyed first and waits for the stream's work
  // before the buffers above are freed.
  detail::CudaStream stream_;
};

}  // namespace

template <class T>
std::unique_ptr<FlowBackend<T>> make_cuda_matrix_flow_backend(
    const HostMixture<T>& mixture, const FlowProblem<T>& problem) {
  return std::make_unique<CudaMatrixFlowBackend<T>>(mixture, problem);
}

template std::unique_ptr<FlowBackend<float>> make_cuda_matrix_flow_backend(
    const HostMixture<float>&, const FlowProblem<float>&);
template std::unique_ptr<FlowBackend<double>> make_cuda_matrix_flow_backend(
    const HostMixture<double>&, const FlowProblem<double>&);

}  // namespace fmg::gemm
