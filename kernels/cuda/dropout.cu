#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/float_io.cuh"
#include "kernels/dropout_mask.h"

namespace rwkv::cuda_kernels {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void keyed_dropout_kernel(const T* x, T* y, int64_t n, int64_t row_size, DropoutLaunch key) {
  for (int64_t at = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; at < n;
       at += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint64_t element = dropout_mask::element_of(key.first_sample, key.sample_stride,
                                                      static_cast<uint64_t>(row_size),
                                                      static_cast<uint64_t>(at / row_size),
                                                      static_cast<uint64_t>(at % row_size));
    store(y, at, load(x, at) * dropout_mask::factor(key.seed, element, key.probability, key.keep_scale));
  }
}

}  // namespace

void keyed_dropout(FloatIo io, const void* x, void* y, int64_t rows, int64_t row_size, const DropoutLaunch& key) {
  const int64_t n = rows * row_size;
  dispatch_io(io, [&](auto zero) {
    using T = decltype(zero);
    keyed_dropout_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream()>>>(static_cast<const T*>(x),
                                                                             static_cast<T*>(y), n, row_size, key);
  });
  check_launch("cuda keyed_dropout");
}

}  // namespace rwkv::cuda_kernels
