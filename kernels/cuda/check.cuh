// Error checking for CUDA runtime calls and kernel launches.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace fmg::detail {

/// Throws std::runtime_error naming the failed call, file, line and CUDA
/// error when `status` is not cudaSuccess.
inline void check_cuda(cudaError_t status, const char* call, const char* file,
                       int line) {
  if (status == cudaSuccess) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) +
                           ": " + call + " failed: " +
                           cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
}

}  // namespace fmg::detail

#define FMG_CUDA_CHECK(call) \
  ::fmg::detail::check_cuda((call), #call, __FILE__, __LINE__)

// Checks a kernel launch; with FMG_CUDA_DEBUG_SYNC it also waits for the
// kernel, so an error surfaces at its launch rather than later.
#if defined(FMG_CUDA_DEBUG_SYNC)
#define FMG_CUDA_CHECK_LAUNCH()              \
  do {                                       \
    FMG_CUDA_CHECK(cudaGetLastError());      \
    FMG_CUDA_CHECK(cudaDeviceSynchronize()); \
  } while (0)
#else
#define FMG_CUDA_CHECK_LAUNCH() FMG_CUDA_CHECK(cudaGetLastError())
#endif
