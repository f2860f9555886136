// Kernels of the CUDA matrix path (kernels/cuda/gemm_flow.cu): per-row
// schedules, centring, the row softmax, the velocity, and the Runge-Kutta
// stages and step control of the rows listed as unfinished.
#pragma once

#include <cub/block/block_reduce.cuh>

#include <cstddef>
#include <cstdint>

#include "kernels/flow.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg::gemm::lockstep {

/// Threads per block of the elementwise and row kernels.
// NOTE: not tuned on a device; 256 is a common default for such kernels.
constexpr int block_size = 256;

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

inline unsigned blocks_for(std::size_t work) {
  return static_cast<unsigned>((work + block_size - 1) / block_size);
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
  v[i * d + j] =
      c_noise * (centered[e] - s.b * mean) + s.db * (mean + center[j]);
}

/// The per-sample velocity() for the flagged rows, one thread per row.
template <class T>
__global__ void fallback_rows_kernel(MixtureView<T> mix, ScheduleKind kind,
                                     const int* rows, int m, const T* times,
                                     const std::uint8_t* fallback, T* x, T* v) {
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
    for (int j = 0; j < d; ++j)
      xi[j] = starts[static_cast<std::size_t>(i) * d + j];
  } else {
    philox_base_sample(seed, first_index + static_cast<std::uint64_t>(i), xi);
  }
  if (base_samples != nullptr) {
    for (int j = 0; j < d; ++j)
      base_samples[static_cast<std::size_t>(i) * d + j] = xi[j];
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
  const std::size_t idx = static_cast<std::size_t>(rows[e / d]) * d + e % d;
  out[idx] = x[idx] + coef * k[idx];
}

template <class T>
__global__ void heun_update_kernel(const int* rows, int m, int d, T half_h,
                                   const T* k1, const T* k2, T* x) {
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const std::size_t idx = static_cast<std::size_t>(rows[e / d]) * d + e % d;
  x[idx] += half_h * (k1[idx] + k2[idx]);
}

template <class T>
__global__ void rk4_update_kernel(const int* rows, int m, int d, T sixth_h,
                                  const T* k1, const T* k2, const T* k3,
                                  const T* k4, T* x) {
  const std::size_t e =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<std::size_t>(m) * d) return;
  const std::size_t idx = static_cast<std::size_t>(rows[e / d]) * d + e % d;
  x[idx] += sixth_h * (k1[idx] + T(2) * k2[idx] + T(2) * k3[idx] + k4[idx]);
}

/// After a fixed step: counts it, or stops a row whose state is not finite.
template <class T>
__global__ void finish_fixed_step_kernel(const int* rows, int m, int d,
                                         std::uint32_t evaluations, const T* x,
                                         RowState<T>* state) {
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
                                        StepControl<T> control, T t_end, T* x,
                                        T* k1, T* stage, T* times,
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
    value = x[q] + h * (Tab::a41 * k1[q] + Tab::a42 * k2[q] + Tab::a43 * k3[q]);
    c = dopri5::c4<T>();
  } else if constexpr (S == 5) {
    value = x[q] + h * (Tab::a51 * k1[q] + Tab::a52 * k2[q] + Tab::a53 * k3[q] +
                        Tab::a54 * k4[q]);
    c = dopri5::c5<T>();
  } else if constexpr (S == 6) {
    value = x[q] + h * (Tab::a61 * k1[q] + Tab::a62 * k2[q] + Tab::a63 * k3[q] +
                        Tab::a64 * k4[q] + Tab::a65 * k5[q]);
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
                                StepControl<T> control, T t_end, T* x, T* k1,
                                const T* k3, const T* k4, const T* k5,
                                const T* k6, const T* k7, const T* next,
                                RowState<T>* state) {
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
    const T scaled = dopri5_scaled_error(h, k1[q], k3[q], k4[q], k5[q], k6[q], k7[q], x[q],
                                         next[q], control);
    err += scaled * scaled;
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
__global__ void finish_kernel(MixtureView<T> mix, T label_scale, int n, const T* x,
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
  const StridedVec<T> xi{const_cast<T*>(x) + static_cast<std::size_t>(i) * d, d,
                         1};
  labels[i] = endpoint_label(mix, label_scale, c, xi);
  counters[4 * i] = s.accepted;
  counters[4 * i + 1] = s.rejected;
  counters[4 * i + 2] = s.evaluations;
  counters[4 * i + 3] = s.status;
}

}  // namespace fmg::gemm::lockstep
