// Owning device and pinned host allocations and streams with RAII; kernels
// receive raw pointers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "kernels/cuda/check.cuh"

namespace fmg::detail {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) { resize(count); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  ~DeviceBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }

  /// Reallocates to hold at least `count` elements; contents are lost. Never
  /// shrinks, so a buffer reused for smaller chunks keeps its size. Throws
  /// std::runtime_error naming the requested bytes when cudaMalloc fails.
  void resize(std::size_t count) {
    if (count <= count_) return;
    if (data_ != nullptr) FMG_CUDA_CHECK(cudaFree(data_));
    data_ = nullptr;
    count_ = 0;
    const std::string call =
        "cudaMalloc of " + std::to_string(count * sizeof(T)) + " bytes";
    check_cuda(cudaMalloc(&data_, count * sizeof(T)), call.c_str(), __FILE__,
               __LINE__);
    count_ = count;
  }

  T* data() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

/// Owning pinned (page-locked) host allocation, which copies between the
/// host and the device need to run asynchronously.
template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t count) { resize(count); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        count_(std::exchange(other.count_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  ~PinnedBuffer() {
    if (data_ != nullptr) cudaFreeHost(data_);
  }

  /// Reallocates to hold at least `count` elements; contents are lost.
  /// Never shrinks. Throws std::runtime_error naming the requested bytes
  /// when cudaHostAlloc fails.
  void resize(std::size_t count) {
    if (count <= count_) return;
    if (data_ != nullptr) FMG_CUDA_CHECK(cudaFreeHost(data_));
    data_ = nullptr;
    count_ = 0;
    const std::string call =
        "cudaHostAlloc of " + std::to_string(count * sizeof(T)) + " bytes";
    void* memory = nullptr;
    check_cuda(cudaHostAlloc(&memory, count * sizeof(T), cudaHostAllocDefault),
               call.c_str(), __FILE__, __LINE__);
    data_ = static_cast<T*>(memory);
    count_ = count;
  }

  /// Gives up ownership and returns the allocation, to be freed with
  /// cudaFreeHost.
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
