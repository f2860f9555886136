// A sample's state and Runge-Kutta workspace in one contiguous host buffer,
// for dimensions known only at run time.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/integrators.hpp"
#include "kernels/vec.hpp"

namespace fmg {

/// State x and workspace ws as views into `scratch`, d values each. Not
/// copyable, because the views point into the object's own buffer.
template <class T>
struct ScratchState {
  using Vec = StridedVec<T>;
  std::vector<T> scratch;
  Vec x;
  Workspace<Vec> ws;

  explicit ScratchState(int d)
      : scratch(static_cast<std::size_t>(d) * (workspace_vectors + 1)) {
    T* p = scratch.data();
    auto next = [&p, d]() {
      Vec v{p, d, 1};
      p += d;
      return v;
    };
    x = next();
    ws = {next(), next(), next(), next(), next(),
          next(), next(), next(), next()};
  }

  ScratchState(const ScratchState&) = delete;
  ScratchState& operator=(const ScratchState&) = delete;
};

}  // namespace fmg
