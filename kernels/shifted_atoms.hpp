// Atoms shifted by their centre, shared by the matrix velocity paths of the
// CPU (kernels/cpu/gemm_flow.hpp) and CUDA (kernels/cuda/gemm_flow.cuh)
// backends. Host code only.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/batch.hpp"

namespace fmg {

/// Atoms mu_k - c of a mixture and their centre c, in precision T.
template <class T>
struct ShiftedAtoms {
  std::vector<T> center;      ///< c, the mean of the atoms of positive weight.
  std::vector<T> atoms;       ///< K x d, row-major: mu_k - c.
  std::vector<T> half_norms;  ///< |mu_k - c|^2 / 2, from the rounded atoms.
};

/// Shifts the atoms of `mixture` by the mean c of those of positive weight
/// (c = 0 when there is none). The mean and the differences are computed in
/// double and each shifted coordinate is rounded to T once, so in float the
/// shifted atoms keep their full relative precision.
template <class T>
ShiftedAtoms<T> shift_atoms(const HostMixture<T>& mixture) {
  const std::size_t d = static_cast<std::size_t>(mixture.dim);
  const std::size_t num_atoms = static_cast<std::size_t>(mixture.num_atoms());

  std::vector<double> center(d, 0.0);
  int positive = 0;
  for (std::size_t k = 0; k < num_atoms; ++k) {
    if (!(mixture.log_weights[k] > -math::infinity<T>())) continue;
    positive += 1;
    for (std::size_t j = 0; j < d; ++j) {
      center[j] += static_cast<double>(mixture.atoms[k * d + j]);
    }
  }
  for (double& c : center) c = positive > 0 ? c / positive : 0.0;

  ShiftedAtoms<T> shifted;
  shifted.center.assign(center.begin(), center.end());
  shifted.atoms.resize(num_atoms * d);
  shifted.half_norms.resize(num_atoms);
  for (std::size_t k = 0; k < num_atoms; ++k) {
    T norm = T(0);
    for (std::size_t j = 0; j < d; ++j) {
      const T value = static_cast<T>(
          static_cast<double>(mixture.atoms[k * d + j]) - center[j]);
      shifted.atoms[k * d + j] = value;
      norm += value * value;
    }
    shifted.half_norms[k] = T(0.5) * norm;
  }
  return shifted;
}

}  // namespace fmg
