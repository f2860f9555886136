// CUDA counts of Laguerre cells and facet bands over base samples.
//
// Layers: the public function (checks, device buffers, chunking), the
// launcher (grid size, shared memory), the kernel (one thread per sample in
// a grid-stride loop, counts reduced per block in shared memory and then
// added to the global counts with atomics).
#include "kernels/nvtx.hpp"
#include "kernels/ot_mass.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "host/errors.hpp"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/device_buffer.cuh"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace cuda {
namespace {

using detail::DeviceBuffer;

// Launch parameters. NOTE: none of these has been measured on a device yet.
// 256 threads per block is the usual starting point for a kernel with
// modest register use (32 to 56 registers on sm_80 and sm_90 with nvcc
// 13.0) and no data shared between threads.
constexpr int block_size = 256;
constexpr int blocks_per_multiprocessor = 8;
// Samples per launch. A block processes at most this many samples, so its
// 32-bit shared counters cannot overflow.
constexpr std::int64_t max_samples_per_launch = std::int64_t(1) << 30;
// Per-thread point storage for dimensions without a register version.
constexpr std::size_t max_scratch_bytes = std::size_t(256) << 20;
// Default dynamic shared memory limit per block.
constexpr std::size_t max_shared_bytes = 48 * 1024;

/// A sample's point: registers for a compile-time dimension D > 0.
template <int D>
struct PointStorage {
  LocalVec<double, D> x;
  __device__ PointStorage(double*, std::int64_t, std::int64_t, int) {}
};

/// A sample's point for a run-time dimension: column `thread` of the
/// structure-of-arrays scratch, so neighbouring threads touch neighbouring
/// addresses.
template <>
struct PointStorage<dynamic_dim> {
  StridedVec<double> x;
  __device__ PointStorage(double* scratch, std::int64_t thread,
                          std::int64_t stride, int dim)
      : x{scratch + thread, dim, stride} {}
};

/// Counts samples into per-block shared counters or directly into the
/// global counts, and adds the block's counters to the global ones at the
/// end. The shared counters are K cells (when shared_cells) followed by
/// K * K bands (when shared_bands).
template <int D>
__global__ void __launch_bounds__(block_size)
    count_laguerre_kernel(MixtureView<double> mix, const double* psi,
                          std::uint64_t seed, std::uint64_t first_index,
                          std::int64_t num_samples, double band_width,
                          double* scratch, unsigned long long* cell_counts,
                          unsigned long long* band_counts, bool shared_cells,
                          bool shared_bands) {
  extern __shared__ unsigned int block_counts[];
  const int num_atoms = mix.num_atoms;
  const int cell_entries = shared_cells ? num_atoms : 0;
  const int shared_entries =
      cell_entries + (shared_bands ? num_atoms * num_atoms : 0);
  for (int e = threadIdx.x; e < shared_entries; e += blockDim.x) {
    block_counts[e] = 0u;
  }
  __syncthreads();

  const std::int64_t stride =
      static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t thread =
      static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  PointStorage<D> point(scratch, thread, stride, mix.dim);
  for (std::int64_t i = thread; i < num_samples; i += stride) {
    philox_base_sample(seed, first_index + static_cast<std::uint64_t>(i),
                       point.x);
    const LaguerreRank<double> rank = rank_laguerre_costs(mix, psi, point.x);
    if (rank.best < 0) continue;
    if (shared_cells) {
      atomicAdd(&block_counts[rank.best], 1u);
    } else {
      atomicAdd(&cell_counts[rank.best], 1ull);
    }
    if (rank.second < 0 || !(rank.gap < band_width)) continue;
    const std::int64_t band =
        static_cast<std::int64_t>(rank.best) * num_atoms + rank.second;
    if (shared_bands) {
      atomicAdd(&block_counts[cell_entries + band], 1u);
    } else {
      atomicAdd(&band_counts[band], 1ull);
    }
  }
  __syncthreads();

  for (int e = threadIdx.x; e < shared_entries; e += blockDim.x) {
    const unsigned int count = block_counts[e];
    if (count == 0u) continue;
    unsigned long long* target = e < cell_entries
                                     ? &cell_counts[e]
                                     : &band_counts[e - cell_entries];
    atomicAdd(target, static_cast<unsigned long long>(count));
  }
}

struct LaunchShape {
  int blocks;
  bool shared_cells;
  bool shared_bands;
  std::size_t shared_bytes;
  std::size_t scratch_doubles;
};

LaunchShape choose_launch_shape(int num_atoms, int dim,
                                std::int64_t num_samples) {
  int device = 0;
  int multiprocessors = 0;
  FMG_CUDA_CHECK(cudaGetDevice(&device));
  FMG_CUDA_CHECK(cudaDeviceGetAttribute(
      &multiprocessors, cudaDevAttrMultiProcessorCount, device));

  LaunchShape shape{};
  const std::int64_t needed_blocks =
      (std::min(num_samples, max_samples_per_launch) + block_size - 1) /
      block_size;
  std::int64_t blocks = std::min<std::int64_t>(
      needed_blocks,
      static_cast<std::int64_t>(multiprocessors) * blocks_per_multiprocessor);
  if (dim > 3) {
    const std::int64_t max_threads = static_cast<std::int64_t>(
        max_scratch_bytes / (sizeof(double) * static_cast<std::size_t>(dim)));
    blocks = std::min(blocks, std::max<std::int64_t>(1, max_threads / block_size));
    shape.scratch_doubles = static_cast<std::size_t>(blocks) * block_size *
                            static_cast<std::size_t>(dim);
  }
  shape.blocks = static_cast<int>(std::max<std::int64_t>(1, blocks));

  const std::size_t cells = static_cast<std::size_t>(num_atoms);
  const std::size_t counter = sizeof(unsigned int);
  shape.shared_cells = cells * counter <= max_shared_bytes;
  shape.shared_bands =
      shape.shared_cells && (cells + cells * cells) * counter <= max_shared_bytes;
  shape.shared_bytes =
      ((shape.shared_cells ? cells : 0) + (shape.shared_bands ? cells * cells : 0)) *
      counter;
  return shape;
}

void launch(const LaunchShape& shape, const MixtureView<double>& mix,
            const double* psi, std::uint64_t seed, std::uint64_t first_index,
            std::int64_t num_samples, double band_width, double* scratch,
            unsigned long long* cell_counts, unsigned long long* band_counts) {
  const dim3 grid(static_cast<unsigned int>(shape.blocks));
  const dim3 block(block_size);
  switch (mix.dim) {
    case 1:
      count_laguerre_kernel<1><<<grid, block, shape.shared_bytes>>>(
          mix, psi, seed, first_index, num_samples, band_width, scratch,
          cell_counts, band_counts, shape.shared_cells, shape.shared_bands);
      break;
    case 2:
      count_laguerre_kernel<2><<<grid, block, shape.shared_bytes>>>(
          mix, psi, seed, first_index, num_samples, band_width, scratch,
          cell_counts, band_counts, shape.shared_cells, shape.shared_bands);
      break;
    case 3:
      count_laguerre_kernel<3><<<grid, block, shape.shared_bytes>>>(
          mix, psi, seed, first_index, num_samples, band_width, scratch,
          cell_counts, band_counts, shape.shared_cells, shape.shared_bands);
      break;
    default:
      count_laguerre_kernel<dynamic_dim><<<grid, block, shape.shared_bytes>>>(
          mix, psi, seed, first_index, num_samples, band_width, scratch,
          cell_counts, band_counts, shape.shared_cells, shape.shared_bands);
      break;
  }
  FMG_CUDA_CHECK_LAUNCH();
}

}  // namespace

void count_laguerre_cells(const MixtureView<double>& mix, const double* psi,
                          std::uint64_t seed, std::uint64_t first_index,
                          std::int64_t num_samples, double band_width,
                          std::int64_t* cell_counts,
                          std::int64_t* band_counts) {
  NvtxRange range("fmg::cuda count Laguerre cells");
  const std::size_t num_atoms = static_cast<std::size_t>(mix.num_atoms);
  const std::size_t band_entries = num_atoms * num_atoms;
  std::fill(cell_counts, cell_counts + num_atoms, std::int64_t(0));
  std::fill(band_counts, band_counts + band_entries, std::int64_t(0));

  // No device (or no driver) is a missing feature, not a failed call.
  int device_count = 0;
  const cudaError_t status = cudaGetDeviceCount(&device_count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // Clears the error, so later calls do not report it.
    throw Unavailable(std::string("no CUDA device is available for the Monte "
                                  "Carlo cell counts: cudaGetDeviceCount "
                                  "failed with ") +
                      cudaGetErrorName(status) + " (" +
                      cudaGetErrorString(status) + "); use --route mc-cpu");
  }
  if (device_count == 0) {
    throw Unavailable(
        "no CUDA device is available for the Monte Carlo cell counts: no "
        "CUDA device is present on this machine; use --route mc-cpu");
  }
  if (num_samples <= 0 || num_atoms == 0) return;

  const std::size_t atom_values = num_atoms * static_cast<std::size_t>(mix.dim);
  DeviceBuffer<double> atoms(atom_values);
  DeviceBuffer<double> potentials(num_atoms);
  DeviceBuffer<unsigned long long> cells(num_atoms);
  DeviceBuffer<unsigned long long> bands(band_entries);
  FMG_CUDA_CHECK(cudaMemcpy(atoms.data(), mix.atoms,
                               atom_values * sizeof(double),
                               cudaMemcpyHostToDevice));
  FMG_CUDA_CHECK(cudaMemcpy(potentials.data(), psi,
                               num_atoms * sizeof(double),
                               cudaMemcpyHostToDevice));
  FMG_CUDA_CHECK(
      cudaMemset(cells.data(), 0, num_atoms * sizeof(unsigned long long)));
  FMG_CUDA_CHECK(
      cudaMemset(bands.data(), 0, band_entries * sizeof(unsigned long long)));

  const LaunchShape shape = choose_launch_shape(mix.num_atoms, mix.dim, num_samples);
  DeviceBuffer<double> scratch(shape.scratch_doubles);
  const MixtureView<double> device_mix{atoms.data(), nullptr, mix.num_atoms,
                                       mix.dim};

  for (std::int64_t begin = 0; begin < num_samples;
       begin += max_samples_per_launch) {
    const std::int64_t count =
        std::min(max_samples_per_launch, num_samples - begin);
    launch(shape, device_mix, potentials.data(), seed,
           first_index + static_cast<std::uint64_t>(begin), count, band_width,
           scratch.data(), cells.data(), bands.data());
  }

  // The device counters are copied straight into the int64 outputs: the
  // two types have the same size, and a count below 2^63 has the same bits
  // in both. This avoids a second host copy of the K * K band counts.
  static_assert(sizeof(unsigned long long) == sizeof(std::int64_t),
                "device counters and outputs must have the same size");
  FMG_CUDA_CHECK(cudaMemcpy(cell_counts, cells.data(),
                            num_atoms * sizeof(unsigned long long),
                            cudaMemcpyDeviceToHost));
  FMG_CUDA_CHECK(cudaMemcpy(band_counts, bands.data(),
                            band_entries * sizeof(unsigned long long),
                            cudaMemcpyDeviceToHost));
}

}  // namespace cuda
}  // namespace fmg
