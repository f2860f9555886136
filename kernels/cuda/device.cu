// Detection of a usable CUDA device.
#include <cuda_runtime.h>

#include <string>

#include "kernels/batch.hpp"

namespace fmg {
namespace {

/// Empty kernel whose attributes can only be read when this build contains
/// code (SASS or PTX) that the current device can run.
__global__ void probe_kernel() {}

/// Stores "<what> failed with <error name> (<error string>)" in `reason`
/// and clears the error, so later runtime calls do not report it again.
bool report_failure(std::string* reason, const std::string& what,
                    cudaError_t status) {
  if (reason != nullptr) {
    *reason = "no usable CUDA device: " + what + " failed with " +
              cudaGetErrorName(status) + " (" + cudaGetErrorString(status) +
              ")";
  }
  cudaGetLastError();
  return false;
}

}  // namespace

bool cuda_backend_available(std::string* reason) {
  // Without a driver (libcuda) this fails with cudaErrorInsufficientDriver
  // or cudaErrorNoDevice rather than returning a count of 0.
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    return report_failure(reason, "cudaGetDeviceCount", status);
  }
  if (count == 0) {
    if (reason != nullptr) *reason = "no CUDA device is present on this machine";
    return false;
  }

  // Reading a kernel's attributes creates the context and loads the kernel,
  // so this also rejects a device that is busy in exclusive mode, or whose
  // architecture this build has no code for (CMAKE_CUDA_ARCHITECTURES).
  int device = 0;
  status = cudaGetDevice(&device);
  if (status != cudaSuccess) {
    return report_failure(reason, "cudaGetDevice", status);
  }
  cudaFuncAttributes attributes{};
  status = cudaFuncGetAttributes(&attributes, probe_kernel);
  if (status != cudaSuccess) {
    return report_failure(
        reason, "loading a kernel on device " + std::to_string(device), status);
  }
  return true;
}

}  // namespace fmg
