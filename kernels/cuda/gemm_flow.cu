// Lockstep integration on the device with cuBLAS products. The state of a
// batch of samples lives in row-major (n x d) device matrices. A list of
// the unfinished rows, rebuilt after every step, selects the rows that the
// elementwise kernels and the products work on. Per-sample scalars (time,
// step, counters, status) follow kernels/integrators.hpp row by row.
#include "kernels/cuda/gemm_flow.cuh"

#include <cublas_v2.h>
#include <cub/block/block_reduce.cuh>
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
#include "kernels/nvtx.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/shifted_atoms.hpp"
#include "kernels/vec.hpp"

namespace fmg::gemm {
namespace {

void check_cublas(cublasStatus_t status, const char* call, const char* file,
                  int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) +
                           ": " + call + " failed: " +
                           cublasGetStatusString(status));
}

#define FMG_CUBLAS_CHECK(call) check_cublas((call), #call, __FILE__, __LINE__)

/// Threads per block of the elementwise and row kernels.
// NOTE: not tuned on a device; 256 is a common default for such kernels.
constexpr int block_size = 256;

/// Largest share of the device memory free at construction that one batch
/// may use; the rest stays for cuBLAS workspace and other processes.
constexpr double batch_memory_share = 0.5;

/// Per-sample integration state, as in integrate_dopri5 and
/// integrate_fixed.
template <class T>
struct RowState {
  T t;
  T h;      ///< Dormand-Prince step; the first-step guess h0 while choosing.
  T t_new;  ///< End of the step being attempted.
  T d1;     ///< First-step norm of k1, kept between its two kernels.
  std::uint32_t accepted;
  std::uint32_t rejected;
  std::uint32_t evaluations;
  int non_finite_steps;
  std::uint8_t status;
  bool previous_rejected;
  bool active;
};

template <class T>
struct MaxOp {
  __device__ T operator()(T x, T y) const { return math::max(x, y); }
};

template <class T>
struct IsActive {
  __host__ __device__ bool operator()(const RowState<T>& s) const {
    return s.active;
  }
};

unsigned blocks_for(std::size_t work) {
  return static_cast<unsigned>((work + block_size - 1) / block_size);
}

// cuBLAS entry points by precision.
cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t op_a,
                    cublasOperation_t op_b, int m, int n, int k,
                    const float* a, int lda, const float* b, int ldb,
                    float* c, int ldc) {
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

// ---------------------------------------------------------------------------
// Velocity of the listed rows.
// ---------------------------------------------------------------------------

template <class T>
__global__ void schedule_rows_kernel(const int* rows, int m, const T* times,
                                     ScheduleKind kind,
                                     ScheduleValues<T>* schedules) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  schedules[r] = evaluate_schedule(kind, times[rows[r]]);
}

/// centered[r] = x[rows[r]] - b_r c, compact m x d.
template <class T>
__global__ void center_rows_kernel(const T* x, const int* rows, int m, int d,
                                   const T* center,
                                   const ScheduleValues<T>* schedules,
                                   T* centered) {
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const int r = static_cast<int>(e / d);
  const int j = static_cast<int>(e % d);
  const std::size_t i = static_cast<std::size_t>(rows[r]);
  centered[e] = x[i * d + j] - schedules[r].b * center[j];
}

/// Turns row r of `logits` (inner products <x', mu'_k>) into
/// responsibilities, one block per row; flags the row for the per-sample
/// fallback when its maximum or normaliser is not finite.
template <class T>
__global__ void softmax_rows_kernel(T* logits, int num_atoms,
                                    const T* log_weights, const T* half_norms,
                                    const ScheduleValues<T>* schedules,
                                    std::uint8_t* fallback) {
  using Reduce = cub::BlockReduce<T, block_size>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ T shared;
  const int r = blockIdx.x;
  T* row = logits + static_cast<std::size_t>(r) * num_atoms;
  const ScheduleValues<T> s = schedules[r];
  const T inv_a = T(1) / s.a;
  const T scale = s.b * inv_a * inv_a;

  T local_max = -math::infinity<T>();
  for (int k = threadIdx.x; k < num_atoms; k += block_size) {
    const T l = (row[k] - s.b * half_norms[k]) * scale + log_weights[k];
    row[k] = l;
    local_max = math::max(local_max, l);
  }
  T top = Reduce(temp).Reduce(local_max, MaxOp<T>{});
  if (threadIdx.x == 0) shared = top;
  __syncthreads();
  top = shared;
  const bool top_finite = math::isfinite(top);

  T local_sum = T(0);
  if (top_finite) {
    // exp(-inf) is exactly 0 on the device, so atoms of zero weight get
    // none of the mass.
    for (int k = threadIdx.x; k < num_atoms; k += block_size) {
      const T e = math::exp(row[k] - top);
      row[k] = e;
      local_sum += e;
    }
  }
  __syncthreads();
  T sum = Reduce(temp).Sum(local_sum);
  if (threadIdx.x == 0) shared = sum;
  __syncthreads();
  sum = shared;

  const bool usable = top_finite && math::isfinite(sum);
  const T inv_sum = usable ? T(1) / sum : T(0);
  for (int k = threadIdx.x; k < num_atoms; k += block_size) {
    row[k] = usable ? row[k] * inv_sum : T(0);
  }
  if (threadIdx.x == 0) fallback[r] = usable ? 0 : 1;
}

/// v = a' (x' - b m') / a + b' (m' + c) into row rows[r] of `v`.
template <class T>
__global__ void velocity_rows_kernel(const int* rows, int m, int d,
                                     const T* center, const T* centered,
                                     const T* means,
                                     const ScheduleValues<T>* schedules,
                                     const std::uint8_t* fallback, T* v) {
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const int r = static_cast<int>(e / d);
  const int j = static_cast<int>(e % d);
  if (fallback[r] != 0) return;
  const ScheduleValues<T> s = schedules[r];
  const T c_noise = s.da / s.a;
  const T mean = means[e];
  const std::size_t i = static_cast<std::size_t>(rows[r]);
  v[i * d + j] = c_noise * (centered[e] - s.b * mean) + s.db * (mean + center[j]);
}

/// The per-sample velocity() for the flagged rows, one thread per row.
template <class T>
__global__ void fallback_rows_kernel(MixtureView<T> mix, ScheduleKind kind,
                                     const int* rows, int m, const T* times,
                                     const std::uint8_t* fallback, T* x,
                                     T* v) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m || fallback[r] == 0) return;
  const std::size_t i = static_cast<std::size_t>(rows[r]);
  const int d = mix.dim;
  const StridedVec<T> xi{x + i * d, d, 1};
  StridedVec<T> vi{v + i * d, d, 1};
  velocity(mix, kind, times[i], xi, vi);
}

// ---------------------------------------------------------------------------
// Integrator kernels.
// ---------------------------------------------------------------------------

template <class T>
__global__ void load_kernel(std::uint64_t seed, std::uint64_t first_index,
                            int n, int d, const T* starts, T* x,
                            T* base_samples, RowState<T>* state) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  StridedVec<T> xi{x + static_cast<std::size_t>(i) * d, d, 1};
  if (starts != nullptr) {
    for (int j = 0; j < d; ++j) xi[j] = starts[static_cast<std::size_t>(i) * d + j];
  } else {
    philox_base_sample(seed, first_index + static_cast<std::uint64_t>(i), xi);
  }
  if (base_samples != nullptr) {
    for (int j = 0; j < d; ++j) base_samples[static_cast<std::size_t>(i) * d + j] = xi[j];
  }
  RowState<T> s{};
  s.active = true;
  s.status = static_cast<std::uint8_t>(SampleStatus::ok);
  state[i] = s;
}

template <class T>
__global__ void fill_times_kernel(const int* rows, int m, T value, T* times) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r < m) times[rows[r]] = value;
}

/// out = x + coef * k on the listed rows; out may be x.
template <class T>
__global__ void axpy_rows_kernel(const int* rows, int m, int d, const T* x,
                                 T coef, const T* k, T* out) {
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const std::size_t idx =
      static_cast<std::size_t>(rows[e / d]) * d + e % d;
  out[idx] = x[idx] + coef * k[idx];
}

template <class T>
__global__ void heun_update_kernel(const int* rows, int m, int d, T half_h,
                                   const T* k1, const T* k2, T* x) {
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const std::size_t idx =
      static_cast<std::size_t>(rows[e / d]) * d + e % d;
  x[idx] += half_h * (k1[idx] + k2[idx]);
}

template <class T>
__global__ void rk4_update_kernel(const int* rows, int m, int d, T sixth_h,
                                  const T* k1, const T* k2, const T* k3,
                                  const T* k4, T* x) {
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const std::size_t idx =
      static_cast<std::size_t>(rows[e / d]) * d + e % d;
  x[idx] += sixth_h * (k1[idx] + T(2) * k2[idx] + T(2) * k3[idx] + k4[idx]);
}

/// After a fixed step: counts it, or stops a row whose state is not finite.
template <class T>
__global__ void finish_fixed_step_kernel(const int* rows, int m, int d,
                                         std::uint32_t evaluations,
                                         const T* x, RowState<T>* state) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const std::size_t i = static_cast<std::size_t>(rows[r]);
  RowState<T>& s = state[i];
  s.evaluations += evaluations;
  bool finite = true;
  for (int j = 0; j < d; ++j) finite = finite && math::isfinite(x[i * d + j]);
  if (finite) {
    s.accepted += 1;
  } else {
    s.status = static_cast<std::uint8_t>(SampleStatus::non_finite_state);
    s.active = false;
  }
}

/// After the first evaluation of Dormand-Prince: counts it, and stops a row
/// whose velocity is not finite.
template <class T>
__global__ void check_first_velocity_kernel(const int* rows, int m, int d,
                                            const T* k1, T initial_step,
                                            RowState<T>* state) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const std::size_t i = static_cast<std::size_t>(rows[r]);
  RowState<T>& s = state[i];
  s.evaluations += 1;
  s.h = initial_step;
  bool finite = true;
  for (int j = 0; j < d; ++j) finite = finite && math::isfinite(k1[i * d + j]);
  if (!finite) {
    s.status = static_cast<std::uint8_t>(SampleStatus::non_finite_state);
    s.active = false;
  }
}

/// dopri5_first_step up to its extra evaluation: h0 and stage = x + h0 k1.
template <class T>
__global__ void first_step_guess_kernel(const int* rows, int m, int d,
                                        StepControl<T> control, T t_end,
                                        T* x, T* k1, T* stage, T* times,
                                        RowState<T>* state) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const std::size_t i = static_cast<std::size_t>(rows[r]);
  const StridedVec<T> xi{x + i * d, d, 1};
  const StridedVec<T> ki{k1 + i * d, d, 1};
  T d1 = T(0);
  const T h0 = dopri5_trial_step(xi, ki, t_end, control, d1);
  for (int j = 0; j < d; ++j) stage[i * d + j] = xi[j] + h0 * ki[j];
  times[i] = h0;
  state[i].h = h0;
  state[i].d1 = d1;
}

/// The rest of dopri5_first_step, from the velocity k2 at (h0, stage).
template <class T>
__global__ void first_step_finish_kernel(const int* rows, int m, int d,
                                         StepControl<T> control, T* x, T* k1,
                                         T* k2, RowState<T>* state) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const std::size_t i = static_cast<std::size_t>(rows[r]);
  RowState<T>& s = state[i];
  const StridedVec<T> xi{x + i * d, d, 1};
  const StridedVec<T> k1i{k1 + i * d, d, 1};
  const StridedVec<T> k2i{k2 + i * d, d, 1};
  s.h = dopri5_first_step_from_trial(xi, k1i, k2i, s.h, s.d1, control);
  s.evaluations += 1;
}

/// Stretches a step that would leave a sliver before t_end and lands the
/// last one exactly on t_end.
template <class T>
__global__ void begin_step_kernel(const int* rows, int m, T t_end,
                                  RowState<T>* state) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  RowState<T>& s = state[rows[r]];
  bool last = false;
  if (s.t + T(1.01) * s.h >= t_end) {
    s.h = t_end - s.t;
    last = true;
  }
  s.t_new = last ? t_end : s.t + s.h;
}

/// Argument of Dormand-Prince stage S (2 to 6), and of the proposal for
/// S = 7, on the listed rows; writes the stage time with the first
/// coordinate.
template <class T, int S>
__global__ void dopri5_stage_kernel(const int* rows, int m, int d, const T* x,
                                    const T* k1, const T* k2, const T* k3,
                                    const T* k4, const T* k5, const T* k6,
                                    const RowState<T>* state, T* out,
                                    T* times) {
  using Tab = Dopri5Tableau<T>;
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const std::size_t i = static_cast<std::size_t>(rows[e / d]);
  const std::size_t q = i * d + e % d;
  const RowState<T>& s = state[i];
  const T h = s.h;
  T value;
  T c;
  if constexpr (S == 2) {
    value = x[q] + h * (Tab::a21 * k1[q]);
    c = dopri5::c2<T>();
  } else if constexpr (S == 3) {
    value = x[q] + h * (Tab::a31 * k1[q] + Tab::a32 * k2[q]);
    c = dopri5::c3<T>();
  } else if constexpr (S == 4) {
    value = x[q] + h * (Tab::a41 * k1[q] + Tab::a42 * k2[q] +
                        Tab::a43 * k3[q]);
    c = dopri5::c4<T>();
  } else if constexpr (S == 5) {
    value = x[q] + h * (Tab::a51 * k1[q] + Tab::a52 * k2[q] +
                        Tab::a53 * k3[q] + Tab::a54 * k4[q]);
    c = dopri5::c5<T>();
  } else if constexpr (S == 6) {
    value = x[q] + h * (Tab::a61 * k1[q] + Tab::a62 * k2[q] +
                        Tab::a63 * k3[q] + Tab::a64 * k4[q] +
                        Tab::a65 * k5[q]);
    c = T(1);
  } else {
    value = x[q] + h * (Tab::b1 * k1[q] + Tab::b3 * k3[q] + Tab::b4 * k4[q] +
                        Tab::b5 * k5[q] + Tab::b6 * k6[q]);
    c = T(1);
  }
  out[q] = value;
  if (e % d == 0) {
    times[i] = c == T(1) ? s.t_new : math::min(s.t + c * h, s.t_new);
  }
}

/// Error test and step update of integrate_dopri5, one warp per row: the
/// lanes sum the scaled error, then all accept or reject alike.
template <class T>
__global__ void end_step_kernel(const int* rows, int m, int d,
                                StepControl<T> control, T t_end, T* x,
                                T* k1, const T* k3, const T* k4, const T* k5,
                                const T* k6, const T* k7, const T* next,
                                RowState<T>* state) {
  using Tab = Dopri5Tableau<T>;
  const int warp = static_cast<int>(
      (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32);
  const int lane = threadIdx.x % 32;
  if (warp >= m) return;
  const std::size_t i = static_cast<std::size_t>(rows[warp]);
  RowState<T> s = state[i];
  const T h = s.h;
  const std::size_t row = i * d;

  T err = T(0);
  for (int j = lane; j < d; j += 32) {
    const std::size_t q = row + j;
    const T local = h * (Tab::e1 * k1[q] + Tab::e3 * k3[q] + Tab::e4 * k4[q] +
                         Tab::e5 * k5[q] + Tab::e6 * k6[q] + Tab::e7 * k7[q]);
    const T scale = control.atol +
                    control.rtol * math::max(math::fabs(x[q]),
                                             math::fabs(next[q]));
    err += (local / scale) * (local / scale);
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    err += __shfl_xor_sync(0xffffffffu, err, offset);
  }
  err = math::sqrt(err / T(d));
  s.evaluations += 6;

  if (!math::isfinite(err)) {
    s.rejected += 1;
    if (++s.non_finite_steps >= 16) {
      s.status = static_cast<std::uint8_t>(SampleStatus::non_finite_state);
      s.active = false;
    } else {
      s.h *= control.min_factor;
      s.previous_rejected = true;
    }
  } else if (err <= T(1)) {
    for (int j = lane; j < d; j += 32) {
      x[row + j] = next[row + j];
      k1[row + j] = k7[row + j];
    }
    s.t = s.t_new;
    s.accepted += 1;
    s.h *= dopri5_step_factor(err, true, s.previous_rejected, control);
    s.previous_rejected = false;
    if (!(s.t < t_end)) s.active = false;
  } else {
    s.rejected += 1;
    s.h *= dopri5_step_factor(err, false, s.previous_rejected, control);
    s.previous_rejected = true;
  }
  // The next attempt would exceed the limit: stop as integrate_dopri5 does
  // at the top of its loop.
  if (s.active && s.accepted + s.rejected >= control.max_steps) {
    s.status = static_cast<std::uint8_t>(SampleStatus::max_steps_reached);
    s.active = false;
  }
  if (lane == 0) state[i] = s;
}

/// Labels and per-sample outputs after the integration.
template <class T>
__global__ void finish_kernel(MixtureView<T> mix, int n, const T* x,
                              const RowState<T>* state, std::int32_t* labels,
                              std::uint32_t* counters) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const RowState<T> s = state[i];
  SampleCounters c;
  c.accepted = s.accepted;
  c.rejected = s.rejected;
  c.evaluations = s.evaluations;
  c.status = static_cast<SampleStatus>(s.status);
  const int d = mix.dim;
  const StridedVec<T> xi{const_cast<T*>(x) + static_cast<std::size_t>(i) * d,
                         d, 1};
  labels[i] = endpoint_label(mix, c, xi);
  counters[4 * i] = s.accepted;
  counters[4 * i + 1] = s.rejected;
  counters[4 * i + 2] = s.evaluations;
  counters[4 * i + 3] = s.status;
}

// ---------------------------------------------------------------------------
// The backend.
// ---------------------------------------------------------------------------

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
    const auto budget =
        static_cast<std::size_t>(batch_memory_share * static_cast<double>(free_bytes));
    // cuBLAS takes int dimensions, and m K must fit the logits' int ldc
    // products, so a batch also stays below 2^31 / K rows.
    const std::size_t int_limit =
        static_cast<std::size_t>(INT32_MAX) / std::max<std::size_t>(k, d);
    max_batch_ = std::max<std::size_t>(
        1, std::min(budget / bytes_per_row, int_limit));
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
    int* end = thrust::copy_if(policy, thrust::counting_iterator<int>(0),
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
                          shifted_.data(), d, logits_.data(), k,
                          means_.data(), d));

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
        problem_.seed, chunk.first_index + offset, static_cast<int>(n),
        dim_, d_starts, vec(0), d_base, state_.data());
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
        view(), static_cast<int>(n), vec(0), state_.data(), labels_.data(),
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
    const std::uint32_t per_step =
        method == Method::euler ? 1 : method == Method::heun ? 2 : 4;
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
        heun_update_kernel<T><<<blocks_for(elements), block_size, 0,
                                stream_.get()>>>(rows_.data(), m, dim_,
                                                 T(0.5) * h, k1, k2, x);
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
        rk4_update_kernel<T><<<blocks_for(elements), block_size, 0,
                               stream_.get()>>>(rows_.data(), m, dim_,
                                                h / T(6), k1, k2, k3, k4, x);
        FMG_CUDA_CHECK_LAUNCH();
      }
      finish_fixed_step_kernel<T><<<blocks_for(m), block_size, 0,
                                    stream_.get()>>>(rows_.data(), m, dim_,
                                                     per_step, x,
                                                     state_.data());
      FMG_CUDA_CHECK_LAUNCH();
      m = rebuild_rows(n);
    }
  }

  void integrate_dopri5_batch(std::size_t n) {
    T *x = vec(0), *k1 = vec(1), *k2 = vec(2), *k3 = vec(3), *k4 = vec(4),
      *k5 = vec(5), *k6 = vec(6), *k7 = vec(7), *stage = vec(8),
      *next = vec(9);
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
      const std::size_t elements = static_cast<std::size_t>(m) * dim_;
      const unsigned grid = blocks_for(elements);
      const int* rows = rows_.data();
      RowState<T>* state = state_.data();
      T* times = times_.data();
      begin_step_kernel<T><<<blocks_for(m), block_size, 0, stream>>>(
          rows, m, t_end, state);
      FMG_CUDA_CHECK_LAUNCH();
      dopri5_stage_kernel<T, 2><<<grid, block_size, 0, stream>>>(
          rows, m, dim_, x, k1, k2, k3, k4, k5, k6, state, stage, times);
      FMG_CUDA_CHECK_LAUNCH();
      evaluate(m, stage, k2);
      dopri5_stage_kernel<T, 3><<<grid, block_size, 0, stream>>>(
          rows, m, dim_, x, k1, k2, k3, k4, k5, k6, state, stage, times);
      FMG_CUDA_CHECK_LAUNCH();
      evaluate(m, stage, k3);
      dopri5_stage_kernel<T, 4><<<grid, block_size, 0, stream>>>(
          rows, m, dim_, x, k1, k2, k3, k4, k5, k6, state, stage, times);
      FMG_CUDA_CHECK_LAUNCH();
      evaluate(m, stage, k4);
      dopri5_stage_kernel<T, 5><<<grid, block_size, 0, stream>>>(
          rows, m, dim_, x, k1, k2, k3, k4, k5, k6, state, stage, times);
      FMG_CUDA_CHECK_LAUNCH();
      evaluate(m, stage, k5);
      dopri5_stage_kernel<T, 6><<<grid, block_size, 0, stream>>>(
          rows, m, dim_, x, k1, k2, k3, k4, k5, k6, state, stage, times);
      FMG_CUDA_CHECK_LAUNCH();
      evaluate(m, stage, k6);
      dopri5_stage_kernel<T, 7><<<grid, block_size, 0, stream>>>(
          rows, m, dim_, x, k1, k2, k3, k4, k5, k6, state, next, times);
      FMG_CUDA_CHECK_LAUNCH();
      evaluate(m, next, k7);
      const std::size_t threads = static_cast<std::size_t>(m) * 32;
      end_step_kernel<T><<<blocks_for(threads), block_size, 0, stream>>>(
          rows, m, dim_, control, t_end, x, k1, k3, k4, k5, k6, k7, next,
          state);
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
                                     n * d * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream));
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
