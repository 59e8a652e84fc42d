// The device-side copy behind Tensor::contiguous(), to(dtype), copy_() and fill_(): copies a strided tensor
// (rank <= 8) into contiguous or strided memory, converting between dtypes. bf16 conversion rounds to nearest even, as
// on the CPU.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_runtime.h"
#include "core/dtype.h"
#include "core/error.h"

namespace rwkv::cuda {

namespace {

constexpr int kMaxRank = 8;

struct Layout {
  int64_t shape[kMaxRank];
  int64_t strides[kMaxRank];
  int64_t dst_strides[kMaxRank];
  int rank;
  bool dst_contiguous;
};

template <typename T>
__device__ double load_as_double(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return static_cast<double>(__bfloat162float(p[i]));
  } else {
    return static_cast<double>(p[i]);
  }
}

template <typename T>
__device__ void store_from_double(T* p, int64_t i, double v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    p[i] = __float2bfloat16_rn(static_cast<float>(v));
  } else {
    p[i] = static_cast<T>(v);
  }
}

template <typename S, typename D>
__global__ void gather_convert(const S* src, Layout layout, int64_t numel, D* dst) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, offset = 0, dst_offset = 0;
    for (int d = layout.rank - 1; d >= 0; --d) {
      const int64_t index = rest % layout.shape[d];
      offset += index * layout.strides[d];
      dst_offset += index * layout.dst_strides[d];
      rest /= layout.shape[d];
    }
    const int64_t at = layout.dst_contiguous ? i : dst_offset;
    if constexpr (std::is_same_v<S, D>) {
      dst[at] = src[offset];
    } else if constexpr (std::is_same_v<S, float> && std::is_same_v<D, __nv_bfloat16>) {
      dst[at] = __float2bfloat16_rn(src[offset]);
    } else {
      store_from_double(dst, at, load_as_double(src, offset));
    }
  }
}

template <typename Fn>
void dispatch(int dtype, Fn&& fn) {
  switch (static_cast<DType>(dtype)) {
    case DType::f32: return fn(float{});
    case DType::bf16: return fn(__nv_bfloat16{});
    case DType::i32: return fn(int32_t{});
    case DType::i64: return fn(int64_t{});
    case DType::u16: return fn(uint16_t{});
    case DType::f64: return fn(double{});
  }
}

}  // namespace

void strided_copy(const void* src, int src_dtype, const int64_t* shape, const int64_t* src_strides, int rank,
                  int64_t numel, void* dst, const int64_t* dst_strides, int dst_dtype, int device) {
  RWKV_CHECK(rank <= kMaxRank, "strided_copy: rank ", rank, " exceeds ", kMaxRank, " on the GPU");
  if (numel == 0) return;
  Layout layout{};
  layout.rank = rank;
  layout.dst_contiguous = dst_strides == nullptr;
  for (int d = 0; d < rank; ++d) {
    layout.shape[d] = shape[d];
    layout.strides[d] = src_strides[d];
    layout.dst_strides[d] = dst_strides ? dst_strides[d] : 0;
  }
  set_device(device);
  const auto stream = static_cast<cudaStream_t>(current_stream(device));
  const int threads = 256;
  const int64_t wanted = (numel + threads - 1) / threads;
  const int blocks = static_cast<int>(wanted < 65535 ? wanted : 65535);
  dispatch(src_dtype, [&](auto s) {
    dispatch(dst_dtype, [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      gather_convert<S, D><<<blocks, threads, 0, stream>>>(static_cast<const S*>(src), layout, numel, static_cast<D*>(dst));
    });
  });
  const cudaError_t status = cudaGetLastError();
  RWKV_CHECK(status == cudaSuccess, "strided_copy: kernel launch failed: ", cudaGetErrorString(status));
}

}  // namespace rwkv::cuda
