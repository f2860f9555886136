// Matrix-product velocity path of the CUDA backend: the samples of a batch
// advance in lockstep, and each velocity evaluation of the unfinished ones
// is two cuBLAS products (logits X M^T, posterior means Gamma M) around a
// row softmax kernel. The maths and its rounding are those of the CPU's
// matrix path, described in kernels/cpu/gemm_flow.hpp.
#pragma once

#include <memory>

#include "kernels/batch.hpp"

namespace fmg::gemm {

/// Creates a CUDA backend that integrates every chunk on the matrix path.
/// make_cuda_flow_backend calls it when cuda_uses_matrix_path selects that
/// path; it needs a CUDA device and throws std::runtime_error naming the
/// failed CUDA or cuBLAS call otherwise.
template <class T>
std::unique_ptr<FlowBackend<T>> make_cuda_matrix_flow_backend(
    const HostMixture<T>& mixture, const FlowProblem<T>& problem);

}  // namespace fmg::gemm
