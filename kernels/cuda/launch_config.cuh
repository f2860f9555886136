// Launch parameters of the CUDA kernels, kept in one place.
#pragma once

#include <cstddef>

namespace fmg::launch {

// NOTE: 128 threads per block is a starting value that has not yet been
// measured on a device; the flow kernel is register-bound for d <= 3, and
// 128 leaves the occupancy to the register count.
inline constexpr int flow_block_size = 128;

/// Most samples one flow kernel launch integrates. A larger chunk runs as
/// several launches, because CUB's histograms count samples in an int.
inline constexpr std::size_t max_flow_launch_samples = std::size_t(1) << 30;

}  // namespace fmg::launch

namespace fmg::detail {

/// When positive, caps the samples of one flow kernel launch below what the
/// device memory budget allows. Tests set it to split a chunk into several
/// launches; the results must not change. 0 (the default) sets no cap.
inline std::size_t flow_launch_sample_limit = 0;

}  // namespace fmg::detail
