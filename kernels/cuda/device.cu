// Detection of a usable CUDA device.
#include <cuda_runtime.h>

#include <string>

#include "kernels/batch.hpp"

namespace fmg {

bool cuda_backend_available(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (reason != nullptr) {
      *reason = std::string("no usable CUDA device: cudaGetDeviceCount failed with ") +
                cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
    }
    cudaGetLastError();  // Clear the sticky-free error so later calls start clean.
    return false;
  }
  if (count == 0) {
    if (reason != nullptr) *reason = "no CUDA device is present on this machine";
    return false;
  }
  return true;
}

}  // namespace fmg
