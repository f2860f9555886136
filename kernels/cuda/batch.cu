// CUDA backend of the flow. Each launch runs one fused kernel with one
// thread per sample: the thread draws its base sample on the device,
// integrates it, and counts its label, status and steps in the block's
// shared memory (step sums through CUB's warp reductions, labels through
// warp match groups). Each block then adds its counts to the chunk's tally
// in device memory, with one atomic per counter. Chunks alternate between
// streams, each with its own device buffers, so one chunk integrates while
// the previous chunk's outputs are copied into pinned host memory and
// written out by the host.
#include "kernels/batch.hpp"

#include <cub/warp/warp_reduce.cuh>
#include <cuda_runtime.h>
#include <nvtx3/nvToolsExtCudaRt.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <iterator>
#include <stdexcept>
#include <string>

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
using detail::DeviceBuffer;
using detail::PinnedBuffer;
namespace layout = launch::block_tally;

/// Reductions of one chunk in device memory. Every block of every launch
/// of the chunk adds its block tally to them.
struct ChunkTally {
  unsigned long long status_counts[3];
  unsigned long long accepted_sum;
  unsigned long long rejected_sum;
  unsigned long long evaluations_sum;
  unsigned long long step_histogram[step_histogram_bins];
  unsigned int accepted_max;
};

/// Device pointers of one launch's outputs. The per-sample arrays are null
/// unless the chunk requests them.
template <class T>
struct LaunchOutputs {
  T* base_samples;       ///< count x d, or null.
  T* endpoints;          ///< count x d, or null.
  std::int32_t* labels;  ///< count, or null.
  ChunkTally* tally;
  /// num_atoms + 1 counters: one per atom, then the failed samples.
  unsigned long long* label_counts;
  /// Whether blocks count labels in shared memory first, or add each
  /// warp's labels to label_counts directly.
  bool shared_labels;
};

constexpr unsigned full_warp = 0xffffffffu;
constexpr int warp_size = 32;

/// Largest number of warps in a block (1024 threads).
constexpr int max_block_warps = 32;

/// The larger of two step counts, the operator of the warp maximum.
struct MaxOfUnsigned {
  __device__ __forceinline__ unsigned operator()(unsigned a, unsigned b) const {
    return a > b ? a : b;
  }
};

/// Calls add(key, lanes) once per distinct `key` among the warp's active
/// lanes, from the lowest lane with that key, passing the number of lanes
/// that share it. Every lane of the warp must call it.
template <class Add>
__device__ __forceinline__ void add_per_distinct_key(bool active,
                                                     unsigned key, Add add) {
  const unsigned inactive_key = 0xffffffffu;
  const unsigned peers =
      __match_any_sync(full_warp, active ? key : inactive_key);
  const int leader = __ffs(peers) - 1;
  if (active && leader == static_cast<int>(threadIdx.x % warp_size)) {
    add(key, static_cast<unsigned>(__popc(peers)));
  }
}

/// Adds `count` to 16-bit counter `slot` of a packed shared array.
__device__ __forceinline__ void add_packed(unsigned* words, unsigned slot,
                                           unsigned count) {
  atomicAdd(&words[slot / 2], count << (16 * (slot % 2)));
}

/// Adds the two 16-bit counters of `word` to counters[0] and counters[1].
/// A zero half writes nothing, so counters[1] may lie past the end when the
/// high half of the last word was never counted.
__device__ __forceinline__ void flush_packed(unsigned word,
                                             unsigned long long* counters) {
  const unsigned low = word & 0xffffu;
  const unsigned high = word >> 16;
  if (low != 0u) atomicAdd(&counters[0], static_cast<unsigned long long>(low));
  if (high != 0u) {
    atomicAdd(&counters[1], static_cast<unsigned long long>(high));
  }
}

/// Adds one sample per lane to the block tally `words` (see
/// launch::block_tally); lanes with `active` false add nothing. Every lane
/// of the warp must call it.
template <class T>
__device__ __forceinline__ void add_to_block_tally(
    unsigned* words, const LaunchOutputs<T>& out, int num_atoms, bool active,
    const SampleCounters& counters, int label) {
  const unsigned lane = threadIdx.x % warp_size;
  const unsigned warp = threadIdx.x / warp_size;
  // The step counters summed over the warp with CUB's warp reductions,
  // whose totals lane 0 receives. Each reduction reuses the warp's storage,
  // so the warp synchronises between them.
  using WarpSum = cub::WarpReduce<unsigned long long>;
  using WarpMax = cub::WarpReduce<unsigned>;
  __shared__ typename WarpSum::TempStorage sum_storage[max_block_warps];
  __shared__ typename WarpMax::TempStorage max_storage[max_block_warps];
  const unsigned accepted = active ? counters.accepted : 0u;
  const unsigned long long accepted_sum =
      WarpSum(sum_storage[warp]).Sum(static_cast<unsigned long long>(accepted));
  __syncwarp();
  const unsigned long long rejected_sum = WarpSum(sum_storage[warp]).Sum(
      static_cast<unsigned long long>(active ? counters.rejected : 0u));
  __syncwarp();
  const unsigned long long evaluations_sum = WarpSum(sum_storage[warp]).Sum(
      static_cast<unsigned long long>(active ? counters.evaluations : 0u));
  const unsigned accepted_max =
      WarpMax(max_storage[warp]).Reduce(accepted, MaxOfUnsigned{});
  if (lane == 0) {
    auto* sums =
        reinterpret_cast<unsigned long long*>(words + layout::sums_offset);
    atomicAdd(&sums[0], accepted_sum);
    atomicAdd(&sums[1], rejected_sum);
    atomicAdd(&sums[2], evaluations_sum);
    atomicMax(&words[layout::max_offset], accepted_max);
  }

  const int status = static_cast<int>(counters.status);
  for (int s = 0; s < 3; ++s) {
    const unsigned voters = __ballot_sync(full_warp, active && status == s);
    if (lane == 0 && voters != 0u) {
      atomicAdd(&words[layout::status_offset + s],
                static_cast<unsigned>(__popc(voters)));
    }
  }

  const unsigned bin =
      min(accepted, static_cast<unsigned>(step_histogram_bins - 1));
  add_per_distinct_key(active, bin, [&](unsigned key, unsigned lanes) {
    add_packed(words + layout::steps_offset, key, lanes);
  });

  const unsigned slot =
      label < 0 ? static_cast<unsigned>(num_atoms) : static_cast<unsigned>(label);
  add_per_distinct_key(active, slot, [&](unsigned key, unsigned lanes) {
    if (out.shared_labels) {
      add_packed(words + layout::labels_offset, key, lanes);
    } else {
      atomicAdd(&out.label_counts[key], static_cast<unsigned long long>(lanes));
    }
  });
}

/// Adds the block tally to the chunk's tally: one atomic per non-zero
/// counter.
template <class T>
__device__ __forceinline__ void flush_block_tally(const unsigned* words,
                                                  const LaunchOutputs<T>& out,
                                                  int label_slots) {
  ChunkTally& tally = *out.tally;
  for (int w = threadIdx.x; w < layout::step_words; w += blockDim.x) {
    flush_packed(words[layout::steps_offset + w], &tally.step_histogram[2 * w]);
  }
  if (out.shared_labels) {
    const int label_words = static_cast<int>(layout::label_words(label_slots));
    for (int w = threadIdx.x; w < label_words; w += blockDim.x) {
      flush_packed(words[layout::labels_offset + w], &out.label_counts[2 * w]);
    }
  }
  if (threadIdx.x == 0) {
    const auto* sums = reinterpret_cast<const unsigned long long*>(
        words + layout::sums_offset);
    if (sums[0] != 0) atomicAdd(&tally.accepted_sum, sums[0]);
    if (sums[1] != 0) atomicAdd(&tally.rejected_sum, sums[1]);
    if (sums[2] != 0) atomicAdd(&tally.evaluations_sum, sums[2]);
    atomicMax(&tally.accepted_max, words[layout::max_offset]);
    for (int s = 0; s < 3; ++s) {
      const unsigned count = words[layout::status_offset + s];
      if (count != 0u) {
        atomicAdd(&tally.status_counts[s],
                  static_cast<unsigned long long>(count));
      }
    }
  }
}

/// Integrates sample i of the launch with D fixed at compile time (state
/// and stages in registers), or with D == dynamic_dim using `scratch` laid
/// out as structure-of-arrays: element j of vector v of sample i is at
/// scratch[(v * d + j) * count + i], so neighbouring threads load
/// neighbouring addresses. Then reduces the block's samples into its
/// shared tally and adds that to out.tally.
///
/// blockDim.x must be a multiple of 32, because whole warps take part in
/// the reduction, and the dynamic shared memory must hold the block tally:
/// layout::fixed_bytes, plus the label words when out.shared_labels.
template <class T, int D>
__global__ void fused_flow_kernel(MixtureView<T> mix, FlowProblem<T> problem,
                                  std::uint64_t first_index, std::size_t count,
                                  const T* __restrict__ starts,
                                  T* __restrict__ scratch,
                                  LaunchOutputs<T> out) {
  // unsigned long long elements align the 64-bit sums at the start.
  extern __shared__ unsigned long long block_memory[];
  unsigned* words = reinterpret_cast<unsigned*>(block_memory);
  const int label_slots = mix.num_atoms + 1;
  const int tally_words =
      layout::labels_offset +
      (out.shared_labels ? static_cast<int>(layout::label_words(label_slots))
                         : 0);
  for (int w = threadIdx.x; w < tally_words; w += blockDim.x) words[w] = 0u;
  __syncthreads();

  const std::size_t i =
      static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < count;
  SampleCounters counters;
  int label = -1;
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

    counters = integrate_sample(mix, problem, x, ws);
    label = endpoint_label(mix, endpoint_scale(problem), counters, x);

    if (out.endpoints != nullptr) {
      for (int j = 0; j < n; ++j) out.endpoints[row + j] = x[j];
    }
    if (out.labels != nullptr) out.labels[i] = label;
  };

  if (active) {
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

  add_to_block_tally(words, out, mix.num_atoms, active, counters, label);
  __syncthreads();
  flush_block_tally(words, out, label_slots);
}

template <class T>
using FlowKernel = void (*)(MixtureView<T>, FlowProblem<T>, std::uint64_t,
                            std::size_t, const T*, T*, LaunchOutputs<T>);

/// Dimensions up to this one run kernels with the state in registers;
/// higher ones use the structure-of-arrays scratch.
constexpr int max_register_dim = 3;

/// Returns the fused kernel for dimension `dim`.
template <class T>
FlowKernel<T> select_flow_kernel(int dim) {
  static_assert(max_register_dim == 3,
                "register kernels exist for dimensions 1 to 3 only");
  switch (dim) {
    case 1: return fused_flow_kernel<T, 1>;
    case 2: return fused_flow_kernel<T, 2>;
    case 3: return fused_flow_kernel<T, 3>;
    default: return fused_flow_kernel<T, dynamic_dim>;
  }
}

/// Names of the NVTX ranges of one stream, so that Nsight Systems shows
/// which stream each transfer and launch was issued on.
struct StreamRangeNames {
  const char* stream;
  const char* submit;
  const char* copy_starts;
  const char* integrate;
  const char* copy_outputs;
  const char* wait;
};

constexpr StreamRangeNames stream_range_names[] = {
    {"fmg stream 0", "fmg::cuda stream 0 submit chunk",
     "fmg::cuda stream 0 copy starts", "fmg::cuda stream 0 integrate",
     "fmg::cuda stream 0 copy outputs", "fmg::cuda stream 0 wait"},
    {"fmg stream 1", "fmg::cuda stream 1 submit chunk",
     "fmg::cuda stream 1 copy starts", "fmg::cuda stream 1 integrate",
     "fmg::cuda stream 1 copy outputs", "fmg::cuda stream 1 wait"},
};
static_assert(std::size(stream_range_names) == launch::flow_stream_count,
              "every stream needs its NVTX range names");

void free_pinned(void* memory) { detail::PinnedHostMemory::release(memory); }

template <class T>
class CudaFlowBackend final : public FlowBackend<T> {
 public:
  CudaFlowBackend(const HostMixture<T>& mixture, const FlowProblem<T>& problem)
      : problem_(problem), dim_(mixture.dim),
        num_atoms_(mixture.num_atoms()),
        kernel_(select_flow_kernel<T>(mixture.dim)) {
    ScopedRange range{"fmg::cuda setup"};
    int device = 0;
    FMG_CUDA_CHECK(cudaGetDevice(&device));
    cudaDeviceProp props{};
    FMG_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
    device_name_ = props.name;
    configure_launch(device);

    const std::size_t label_slots = static_cast<std::size_t>(num_atoms_) + 1;
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      StreamSlot& slot = slots_[s];
      nvtxNameCudaStreamA(slot.stream.get(), stream_range_names[s].stream);
      slot.tally.resize(1);
      slot.host_tally.resize(1);
      slot.label_counts.resize(label_slots);
      slot.host_label_counts.resize(label_slots);
    }

    // The copies go on a stream because a cudaMemcpy from pageable memory
    // may return before its DMA ends, and it runs on the legacy default
    // stream, which kernels on a non-blocking stream do not wait for.
    const cudaStream_t stream = slots_[0].stream.get();
    atoms_.resize(mixture.atoms.size());
    log_weights_.resize(mixture.log_weights.size());
    FMG_CUDA_CHECK(cudaMemcpyAsync(atoms_.data(), mixture.atoms.data(),
                                   mixture.atoms.size() * sizeof(T),
                                   cudaMemcpyHostToDevice, stream));
    FMG_CUDA_CHECK(cudaMemcpyAsync(
        log_weights_.data(), mixture.log_weights.data(),
        mixture.log_weights.size() * sizeof(T), cudaMemcpyHostToDevice,
        stream));
    FMG_CUDA_CHECK(cudaStreamSynchronize(stream));

    // Launches may use half of the memory that is free now, shared by the
    // streams, which leaves room for other processes.
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    FMG_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    stream_budget_bytes_ = free_bytes / 2 / slots_.size();
  }

  void run_chunk(const FlowChunk<T>& chunk, FlowTally& tally) override {
    if (chunk.count == 0) return;
    if (in_flight_ != 0) {
      throw std::logic_error("run_chunk: " + std::to_string(in_flight_) +
                             " submitted chunks are not finished");
    }
    submit_chunk(chunk);
    finish_chunk(tally);
  }

  std::string name() const override { return "cuda"; }
  std::string device() const override { return device_name_; }

  std::size_t max_chunks_in_flight() const override { return slots_.size(); }

  /// Enqueues the chunk's copies and launches on the next stream and
  /// returns. An empty chunk still takes its turn in the pipeline.
  void submit_chunk(const FlowChunk<T>& chunk) override {
    if (in_flight_ == slots_.size()) {
      throw std::logic_error("submit_chunk: " + std::to_string(in_flight_) +
                             " chunks are already in flight");
    }
    const std::size_t index = next_submit_;
    StreamSlot& slot = slots_[index];
    const StreamRangeNames& names = stream_range_names[index];
    ScopedRange range{names.submit};

    // The chunk counts as in flight before anything is enqueued, so that
    // finish_chunk waits for whatever was enqueued when this call throws.
    next_submit_ = (index + 1) % slots_.size();
    ++in_flight_;
    slot.has_work = chunk.count > 0;
    slot.incomplete = true;
    if (slot.has_work) enqueue_chunk(slot, names, chunk);
    slot.incomplete = false;
  }

  /// Waits for the oldest chunk's stream and adds its tally from pinned
  /// memory to `tally`.
  void finish_chunk(FlowTally& tally) override {
    if (in_flight_ == 0) {
      throw std::logic_error("finish_chunk: no chunk is in flight");
    }
    const std::size_t index = next_finish_;
    StreamSlot& slot = slots_[index];
    // Advance first, so that a failed chunk does not block the next one.
    next_finish_ = (index + 1) % slots_.size();
    --in_flight_;
    {
      ScopedRange range{stream_range_names[index].wait};
      FMG_CUDA_CHECK(cudaStreamSynchronize(slot.stream.get()));
    }
    if (slot.incomplete) {
      throw std::runtime_error(
          "finish_chunk: enqueueing the chunk failed, so its results are "
          "incomplete");
    }
    if (slot.has_work) add_chunk_tally(slot, tally);
  }

  HostAllocation allocate_host(std::size_t bytes) override {
    HostAllocation memory(nullptr, free_pinned);
    if (bytes == 0) return memory;
    PinnedBuffer<unsigned char> buffer(bytes);
    memory.reset(buffer.release());
    return memory;
  }

 private:
  /// Device buffers, pinned tally and stream of one chunk in flight.
  struct StreamSlot {
    DeviceBuffer<T> starts, base, endpoints, scratch;
    DeviceBuffer<std::int32_t> labels;
    DeviceBuffer<ChunkTally> tally;
    DeviceBuffer<unsigned long long> label_counts;
    PinnedBuffer<ChunkTally> host_tally;
    PinnedBuffer<unsigned long long> host_label_counts;
    bool has_work = false;
    bool incomplete = false;
    // Declared last, so it is destroyed first: its destructor waits for the
    // stream's work before the buffers above are freed.
    detail::CudaStream stream;
  };

  /// Sets the block size (FMG_CUDA_BLOCK_SIZE, or the occupancy choice)
  /// and decides whether the label counts fit in shared memory (see
  /// launch::max_shared_label_slots).
  void configure_launch(int device) {
    cudaFuncAttributes attributes{};
    FMG_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel_));
    const int occupancy_size = launch::occupancy_block_size(
        [&](int size) {
          return blocks_per_multiprocessor(size, layout::fixed_bytes);
        },
        attributes.maxThreadsPerBlock);
    block_size_ = launch::choose_flow_block_size(
        launch::parse_flow_block_size(
            std::getenv(launch::flow_block_size_variable)),
        occupancy_size, attributes.maxThreadsPerBlock);

    int per_block = 0, per_multiprocessor = 0, reserved = 0;
    FMG_CUDA_CHECK(cudaDeviceGetAttribute(
        &per_block, cudaDevAttrMaxSharedMemoryPerBlock, device));
    FMG_CUDA_CHECK(cudaDeviceGetAttribute(
        &per_multiprocessor, cudaDevAttrMaxSharedMemoryPerMultiprocessor,
        device));
    FMG_CUDA_CHECK(cudaDeviceGetAttribute(
        &reserved, cudaDevAttrReservedSharedMemoryPerBlock, device));
    int major = 0;
    FMG_CUDA_CHECK(cudaDeviceGetAttribute(
        &major, cudaDevAttrComputeCapabilityMajor, device));
    launch::SharedMemoryLimits limits;
    limits.allocation_granularity = major >= 8 ? 128 : 256;
    limits.per_block = static_cast<std::size_t>(per_block) -
                       std::min<std::size_t>(per_block,
                                             attributes.sharedSizeBytes);
    limits.per_multiprocessor = static_cast<std::size_t>(per_multiprocessor);
    limits.reserved_per_block =
        static_cast<std::size_t>(reserved) + attributes.sharedSizeBytes;

    const int fixed_occupancy =
        blocks_per_multiprocessor(block_size_, layout::fixed_bytes);
    const std::size_t label_slots = static_cast<std::size_t>(num_atoms_) + 1;
    shared_labels_ =
        !detail::flow_force_global_label_counts &&
        label_slots <= launch::max_shared_label_slots(limits, fixed_occupancy);
    shared_bytes_ = layout::fixed_bytes;
    if (shared_labels_) {
      const std::size_t with_labels =
          layout::fixed_bytes + 4 * layout::label_words(label_slots);
      // A check against the runtime's occupancy calculator, in case the
      // driver allocates shared memory differently from the model of
      // max_shared_label_slots.
      shared_labels_ =
          blocks_per_multiprocessor(block_size_, with_labels) >= fixed_occupancy;
      if (shared_labels_) shared_bytes_ = with_labels;
    }
  }

  int blocks_per_multiprocessor(int block_size,
                                std::size_t shared_bytes) const {
    int blocks = 0;
    FMG_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &blocks, kernel_, block_size, shared_bytes));
    return blocks;
  }

  /// Returns how many samples of `chunk` one launch integrates: all of them
  /// unless their device buffers would exceed the stream's share of the
  /// memory budget (at d = 4096 in double a sample needs 10 scratch
  /// vectors, 320 KiB) or launch::max_flow_launch_samples.
  std::size_t samples_per_launch(const FlowChunk<T>& chunk) const {
    std::size_t vectors = 0;
    if (chunk.starts != nullptr) vectors += 1;
    if (chunk.base_samples != nullptr) vectors += 1;
    if (chunk.endpoints != nullptr) vectors += 1;
    if (dim_ > max_register_dim) vectors += workspace_vectors + 1;
    std::size_t bytes_per_sample =
        vectors * static_cast<std::size_t>(dim_) * sizeof(T);
    if (chunk.labels != nullptr) bytes_per_sample += sizeof(std::int32_t);

    std::size_t limit = launch::max_flow_launch_samples;
    if (bytes_per_sample > 0) {
      limit = std::min(limit, std::max<std::size_t>(
                                  1, stream_budget_bytes_ / bytes_per_sample));
    }
    if (detail::flow_launch_sample_limit > 0) {
      limit = std::min(limit, detail::flow_launch_sample_limit);
    }
    return std::min(limit, chunk.count);
  }

  /// Enqueues every launch of `chunk` on the slot's stream, then the copy
  /// of the chunk's tally into pinned memory.
  void enqueue_chunk(StreamSlot& slot, const StreamRangeNames& names,
                     const FlowChunk<T>& chunk) {
    const cudaStream_t stream = slot.stream.get();
    FMG_CUDA_CHECK(
        cudaMemsetAsync(slot.tally.data(), 0, sizeof(ChunkTally), stream));
    const std::size_t label_slots = static_cast<std::size_t>(num_atoms_) + 1;
    FMG_CUDA_CHECK(cudaMemsetAsync(slot.label_counts.data(), 0,
                                   label_slots * sizeof(unsigned long long),
                                   stream));

    const std::size_t per_launch = samples_per_launch(chunk);
    for (std::size_t offset = 0; offset < chunk.count; offset += per_launch) {
      const std::size_t n = std::min(per_launch, chunk.count - offset);
      enqueue_launch(slot, names, chunk, offset, n);
    }

    ScopedRange range{names.copy_outputs};
    FMG_CUDA_CHECK(cudaMemcpyAsync(slot.host_tally.data(), slot.tally.data(),
                                   sizeof(ChunkTally), cudaMemcpyDeviceToHost,
                                   stream));
    FMG_CUDA_CHECK(cudaMemcpyAsync(
        slot.host_label_counts.data(), slot.label_counts.data(),
        label_slots * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
        stream));
  }

  /// Enqueues samples offset .. offset + n - 1 of `chunk`: the copy of
  /// their starting points, one kernel launch, and the copies of their
  /// requested outputs to the host.
  void enqueue_launch(StreamSlot& slot, const StreamRangeNames& names,
                      const FlowChunk<T>& chunk, std::size_t offset,
                      std::size_t n) {
    const cudaStream_t stream = slot.stream.get();
    const std::size_t d = static_cast<std::size_t>(dim_);
    const std::size_t values = n * d;

    const T* d_starts = nullptr;
    if (chunk.starts != nullptr) {
      ScopedRange range{names.copy_starts};
      slot.starts.resize(values);
      FMG_CUDA_CHECK(cudaMemcpyAsync(slot.starts.data(),
                                     chunk.starts + offset * d,
                                     values * sizeof(T),
                                     cudaMemcpyHostToDevice, stream));
      d_starts = slot.starts.data();
    }
    if (chunk.base_samples != nullptr) slot.base.resize(values);
    if (chunk.endpoints != nullptr) slot.endpoints.resize(values);
    if (chunk.labels != nullptr) slot.labels.resize(n);
    if (dim_ > max_register_dim) {
      slot.scratch.resize(values * (workspace_vectors + 1));
    }

    const LaunchOutputs<T> out{
        chunk.base_samples != nullptr ? slot.base.data() : nullptr,
        chunk.endpoints != nullptr ? slot.endpoints.data() : nullptr,
        chunk.labels != nullptr ? slot.labels.data() : nullptr,
        slot.tally.data(),
        slot.label_counts.data(),
        shared_labels_};
    const MixtureView<T> mix{atoms_.data(), log_weights_.data(), num_atoms_,
                             dim_};
    {
      ScopedRange range{names.integrate};
      const std::size_t block = static_cast<std::size_t>(block_size_);
      const unsigned blocks = static_cast<unsigned>((n + block - 1) / block);
      kernel_<<<blocks, block_size_, shared_bytes_, stream>>>(
          mix, problem_, chunk.first_index + offset, n, d_starts,
          slot.scratch.data(), out);
      FMG_CUDA_CHECK_LAUNCH();
    }

    ScopedRange range{names.copy_outputs};
    if (chunk.labels != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.labels + offset, slot.labels.data(),
                                     n * sizeof(std::int32_t),
                                     cudaMemcpyDeviceToHost, stream));
    }
    if (chunk.endpoints != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.endpoints + offset * d,
                                     slot.endpoints.data(), values * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream));
    }
    if (chunk.base_samples != nullptr) {
      FMG_CUDA_CHECK(cudaMemcpyAsync(chunk.base_samples + offset * d,
                                     slot.base.data(), values * sizeof(T),
                                     cudaMemcpyDeviceToHost, stream));
    }
  }

  /// Adds the finished chunk's tally, copied to pinned memory, to `tally`.
  void add_chunk_tally(const StreamSlot& slot, FlowTally& tally) const {
    ScopedRange range{"fmg::cuda add chunk tally"};
    const ChunkTally& chunk = *slot.host_tally.data();
    const unsigned long long* labels = slot.host_label_counts.data();
    const unsigned long long failed_labels = labels[num_atoms_];
    const unsigned long long failed_samples =
        chunk.status_counts[1] + chunk.status_counts[2];
    if (failed_labels != failed_samples) {
      throw std::logic_error(
          "the fused flow kernel counted " + std::to_string(failed_labels) +
          " failed labels but " + std::to_string(failed_samples) +
          " failed samples");
    }

    for (int k = 0; k < num_atoms_; ++k) {
      tally.label_counts[static_cast<std::size_t>(k)] += labels[k];
    }
    for (std::size_t s = 0; s < 3; ++s) {
      tally.status_counts[s] += chunk.status_counts[s];
    }
    for (std::size_t b = 0; b < tally.step_histogram.size(); ++b) {
      tally.step_histogram[b] += chunk.step_histogram[b];
    }
    tally.accepted_sum += chunk.accepted_sum;
    tally.rejected_sum += chunk.rejected_sum;
    tally.evaluations_sum += chunk.evaluations_sum;
    tally.accepted_max = std::max(tally.accepted_max, chunk.accepted_max);
  }

  FlowProblem<T> problem_;
  int dim_;
  int num_atoms_;
  FlowKernel<T> kernel_;
  std::string device_name_;
  int block_size_ = 0;
  bool shared_labels_ = false;
  std::size_t shared_bytes_ = 0;
  std::size_t stream_budget_bytes_ = 0;

  detail::DeviceBuffer<T> atoms_, log_weights_;
  std::size_t next_submit_ = 0;
  std::size_t next_finish_ = 0;
  std::size_t in_flight_ = 0;
  // Declared last, so the streams wait for their work before atoms_ and
  // log_weights_, which every launch reads, are freed.
  std::array<StreamSlot, launch::flow_stream_count> slots_;
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
