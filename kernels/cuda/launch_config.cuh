// Launch parameters of the CUDA kernels, kept in one place, with the host
// logic that derives them from the device's limits. Plain C++, so that the
// CPU tests check it in builds without CUDA.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>

#include "host/errors.hpp"
#include "kernels/batch.hpp"

namespace fmg::launch {

/// Range of block sizes from which the flow backend picks by occupancy
/// (see occupancy_block_size). Under Dormand-Prince a block keeps its
/// registers and shared memory until its slowest sample finishes, so larger
/// blocks release them later, while smaller blocks zero and flush their
/// 8 KiB tally for fewer samples. With the register counts that nvcc 13.0
/// gives the fused kernels for sm_90 (46 to 172), the occupancy calculator
/// of cuda_occupancy.h picks 128 threads for every one of them, because no
/// larger size in the range keeps more warps resident.
// NOTE: the range is reasoned, not measured. Confirm the choice on an H200
// by timing FMG_CUDA_BLOCK_SIZE = 64, 128, 192, 256 and 512 with
// fmg_flow_bench, and record the result here.
inline constexpr int min_default_flow_block_size = 128;
inline constexpr int max_default_flow_block_size = 256;

/// Environment variable that overrides the flow kernel's block size, for
/// measurements: a multiple of 32 from 32 to 1024.
inline constexpr const char* flow_block_size_variable = "FMG_CUDA_BLOCK_SIZE";

/// CUDA streams of the flow backend, each with its own device buffers. One
/// chunk integrates while the previous chunk's outputs are copied back.
inline constexpr std::size_t flow_stream_count = 2;

/// Maximum number of samples that one flow kernel launch integrates, so
/// the grid stays below 2^25 blocks of 32 threads. A larger chunk runs as
/// several launches.
inline constexpr std::size_t max_flow_launch_samples = std::size_t(1) << 30;

/// Returns the block size that `text`, the value of FMG_CUDA_BLOCK_SIZE,
/// requests, or 0 when `text` is null or empty. Throws fmg::InvalidArgument
/// unless `text` is a decimal multiple of 32 from 32 to 1024.
inline int parse_flow_block_size(const char* text) {
  if (text == nullptr || *text == '\0') return 0;
  long value = 0;
  bool valid = true;
  for (const char* c = text; *c != '\0' && valid; ++c) {
    valid = *c >= '0' && *c <= '9' && value <= 1024;
    if (valid) value = 10 * value + (*c - '0');
  }
  if (!valid || value < 32 || value > 1024 || value % 32 != 0) {
    throw InvalidArgument(std::string("invalid ") + flow_block_size_variable +
                          " '" + text +
                          "': it must be a multiple of 32 from 32 to 1024, "
                          "or unset for the automatic choice");
  }
  return static_cast<int>(value);
}

/// Returns the block size, in whole warps from min_default_flow_block_size
/// to max_default_flow_block_size and at most `kernel_max` (the kernel's
/// maxThreadsPerBlock, which its register count limits), that keeps the
/// most threads resident per multiprocessor. Ties go to the smaller block.
/// `resident_blocks(size)` returns how many blocks of `size` threads fit on
/// one multiprocessor, as cudaOccupancyMaxActiveBlocksPerMultiprocessor
/// does. When `kernel_max` is below the range, returns `kernel_max` rounded
/// down to whole warps.
template <class ResidentBlocks>
int occupancy_block_size(ResidentBlocks&& resident_blocks, int kernel_max) {
  const int warp = 32;
  const int largest = std::min(max_default_flow_block_size, kernel_max);
  int best_size =
      std::max(warp, std::min(min_default_flow_block_size, kernel_max) / warp * warp);
  long best_threads = -1;
  for (int size = min_default_flow_block_size; size <= largest; size += warp) {
    const long threads = static_cast<long>(resident_blocks(size)) * size;
    if (threads > best_threads) {
      best_threads = threads;
      best_size = size;
    }
  }
  return best_size;
}

/// Returns `requested` (from FMG_CUDA_BLOCK_SIZE) when positive, else
/// `occupancy_size`. Throws fmg::InvalidArgument when `requested` exceeds
/// `kernel_max`, the kernel's maxThreadsPerBlock on this device.
inline int choose_flow_block_size(int requested, int occupancy_size,
                                  int kernel_max) {
  if (requested <= 0) return occupancy_size;
  if (requested > kernel_max) {
    throw InvalidArgument(std::string("invalid ") + flow_block_size_variable +
                          " " + std::to_string(requested) +
                          ": the flow kernel's registers allow at most " +
                          std::to_string(kernel_max) +
                          " threads per block on this device");
  }
  return requested;
}

/// Layout of the fused flow kernel's per-block tally in shared memory, in
/// 32-bit words. The label counts and the step histogram are 16-bit
/// counters packed two to a word, which is exact because a block counts at
/// most 1024 samples. The sums are 64-bit, so they hold 1024 samples of
/// 2^32 - 1 steps each.
namespace block_tally {

inline constexpr int sums_offset = 0;    ///< Accepted, rejected, evaluations.
inline constexpr int max_offset = 6;     ///< Maximum accepted steps.
inline constexpr int status_offset = 7;  ///< One word per SampleStatus.
inline constexpr int steps_offset = 10;
inline constexpr int step_words = step_histogram_bins / 2;
/// First word of the label counts (K atoms, then failed samples), when
/// they are kept in shared memory.
inline constexpr int labels_offset = steps_offset + step_words;
/// Bytes of the tally without the label counts.
inline constexpr std::size_t fixed_bytes =
    static_cast<std::size_t>(labels_offset) * 4;

/// Words that hold `slots` packed 16-bit label counters.
inline constexpr std::size_t label_words(std::size_t slots) {
  return (slots + 1) / 2;
}

static_assert(step_histogram_bins % 2 == 0,
              "the step histogram packs two bins to a word");

}  // namespace block_tally

/// Shared memory limits of a device, in bytes.
struct SharedMemoryLimits {
  /// cudaDevAttrMaxSharedMemoryPerBlock: the per-block limit without the
  /// opt-in of cudaFuncSetAttribute, 48 KiB on every current device.
  std::size_t per_block = 0;
  /// cudaDevAttrMaxSharedMemoryPerMultiprocessor (228 KiB on sm_90).
  std::size_t per_multiprocessor = 0;
  /// cudaDevAttrReservedSharedMemoryPerBlock (1 KiB on sm_80 and sm_90).
  std::size_t reserved_per_block = 0;
  /// Unit in which a block's shared memory, reserved part included, is
  /// allocated: 128 bytes from sm_80 on and 256 before, after
  /// cudaOccSMemAllocationGranularity in CUDA 13.0's cuda_occupancy.h.
  std::size_t allocation_granularity = 128;
};

/// Returns the maximum number of label counters (atoms plus the failure
/// slot) that the fused flow kernel keeps in shared memory. It is the room
/// left beside the fixed part of the block tally when
/// `blocks_per_multiprocessor` blocks (the occupancy that registers and the
/// fixed part allow) share a multiprocessor, capped by the per-block limit
/// without opt-in. A mixture with more atoms counts its labels with global
/// atomics instead, so the label histogram never lowers the occupancy. On
/// an H200 (228 KiB per multiprocessor, 1 KiB reserved per block) that is
/// 2,668 counters at 16 blocks per multiprocessor, 18,668 at 5 and 20,460
/// at 4 or fewer.
inline std::size_t max_shared_label_slots(const SharedMemoryLimits& limits,
                                          int blocks_per_multiprocessor) {
  const std::size_t blocks =
      static_cast<std::size_t>(std::max(1, blocks_per_multiprocessor));
  const std::size_t unit = std::max<std::size_t>(1, limits.allocation_granularity);
  const std::size_t share = limits.per_multiprocessor / blocks / unit * unit;
  std::size_t per_block =
      share > limits.reserved_per_block ? share - limits.reserved_per_block : 0;
  per_block = std::min(per_block, limits.per_block);
  if (per_block <= block_tally::fixed_bytes) return 0;
  return (per_block - block_tally::fixed_bytes) / 4 * 2;
}

}  // namespace fmg::launch

namespace fmg::detail {

/// When positive, caps the samples of one flow kernel launch below what the
/// device memory budget allows. Tests set it to split a chunk into several
/// launches; the results must not change. 0 (the default) sets no cap.
inline std::size_t flow_launch_sample_limit = 0;

/// When true, the flow backends built afterwards count labels with global
/// atomics whatever the number of atoms. Tests set it to run the fallback
/// of large mixtures on small ones; the results must not change.
inline bool flow_force_global_label_counts = false;

}  // namespace fmg::detail
