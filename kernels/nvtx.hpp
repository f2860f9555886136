// NVTX ranges in the "fmg" domain, so Nsight Systems shows each phase of a
// run (chunks, sampling and integration, reductions, transfers, OT Newton
// iterations) on its timeline. Without CUDA the ranges compile to nothing.
#pragma once

#if defined(FMG_WITH_CUDA)
#include <nvtx3/nvtx3.hpp>

namespace fmg {

/// The NVTX domain of every fmg range.
struct NvtxDomain {
  static constexpr char const* name{"fmg"};
};

/// A range that is open while it is in scope.
using NvtxRange = nvtx3::scoped_range_in<NvtxDomain>;

}  // namespace fmg

#else

namespace fmg {

/// Stand-in for builds without CUDA: records nothing.
struct NvtxRange {
  explicit NvtxRange(const char*) {}
};

}  // namespace fmg

#endif
