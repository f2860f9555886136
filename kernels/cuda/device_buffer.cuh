// Owning device and pinned host allocations and streams with RAII; kernels
// receive raw pointers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "kernels/cuda/check.cuh"

namespace fmg::detail {

/// Allocation and release of device memory.
struct DeviceMemory {
  static constexpr const char* allocate_name = "cudaMalloc";
  static cudaError_t allocate(void** memory, std::size_t bytes) {
    return cudaMalloc(memory, bytes);
  }
  static cudaError_t release(void* memory) { return cudaFree(memory); }
};

/// Allocation and release of pinned (page-locked) host memory, which copies
/// between the host and the device need to run asynchronously.
struct PinnedHostMemory {
  static constexpr const char* allocate_name = "cudaHostAlloc";
  static cudaError_t allocate(void** memory, std::size_t bytes) {
    return cudaHostAlloc(memory, bytes, cudaHostAllocDefault);
  }
  static cudaError_t release(void* memory) { return cudaFreeHost(memory); }
};

/// Owning allocation of `Memory` (DeviceMemory or PinnedHostMemory).
template <class T, class Memory>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  explicit CudaBuffer(std::size_t count) { resize(count); }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  CudaBuffer(CudaBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        count_(std::exchange(other.count_, 0)) {}
  CudaBuffer& operator=(CudaBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  ~CudaBuffer() {
    if (data_ != nullptr) Memory::release(data_);
  }

  /// Reallocates to hold at least `count` elements; contents are lost. Never
  /// shrinks, so a buffer reused for smaller chunks keeps its size. Throws
  /// std::runtime_error naming the requested bytes when the allocation
  /// fails.
  void resize(std::size_t count) {
    if (count <= count_) return;
    if (data_ != nullptr) FMG_CUDA_CHECK(Memory::release(data_));
    data_ = nullptr;
    count_ = 0;
    const std::string call = std::string(Memory::allocate_name) + " of " +
                             std::to_string(count * sizeof(T)) + " bytes";
    void* memory = nullptr;
    check_cuda(Memory::allocate(&memory, count * sizeof(T)), call.c_str(),
               __FILE__, __LINE__);
    data_ = static_cast<T*>(memory);
    count_ = count;
  }

  /// Gives up ownership and returns the allocation, which the caller then
  /// frees with Memory::release.
  T* release() {
    count_ = 0;
    return std::exchange(data_, nullptr);
  }

  T* data() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

template <class T>
using DeviceBuffer = CudaBuffer<T, DeviceMemory>;

template <class T>
using PinnedBuffer = CudaBuffer<T, PinnedHostMemory>;

/// Owning non-blocking stream. The destructor waits for the stream's work
/// before destroying it, so buffers freed afterwards are no longer in use.
class CudaStream {
 public:
  CudaStream() {
    FMG_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  ~CudaStream() {
    // Errors are ignored because a destructor must not throw.
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }

  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace fmg::detail
