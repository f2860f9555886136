// Small vector types for per-sample state.
//
// A sample's state, stages and outputs are d-vectors. When d is known at
// compile time they live in registers (LocalVec); otherwise they are views
// into scratch memory with a stride (StridedVec), so the CUDA backend can lay
// samples out as structure-of-arrays and keep loads coalesced.
#pragma once

#include <cstddef>

#include "kernels/common.hpp"

namespace fmg {

/// Compile-time dimension marker for "known only at run time".
inline constexpr int dynamic_dim = 0;

/// A d-vector held by value, for a dimension D fixed at compile time.
template <class T, int D>
struct LocalVec {
  static_assert(D > 0, "LocalVec needs a positive compile-time dimension");
  T v[D];

  FMG_HD FMG_INLINE constexpr int size() const { return D; }
  FMG_HD FMG_INLINE T& operator[](int j) { return v[j]; }
  FMG_HD FMG_INLINE const T& operator[](int j) const { return v[j]; }
};

/// A non-owning view of a d-vector whose elements are `stride` apart.
template <class T>
struct StridedVec {
  T* data;
  int n;
  std::ptrdiff_t stride;

  FMG_HD FMG_INLINE int size() const { return n; }
  FMG_HD FMG_INLINE T& operator[](int j) const { return data[j * stride]; }
};

}  // namespace fmg
