// Launch parameters of the CUDA kernels, kept in one place.
#pragma once

namespace fmg::launch {

// NOTE: 128 threads per block is a starting value that has not yet been
// measured on a device; the flow kernel is register-bound for d <= 3, and
// 128 leaves the occupancy to the register count.
inline constexpr int flow_block_size = 128;

}  // namespace fmg::launch
