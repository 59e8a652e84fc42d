// GEMM through cuBLAS (cublasGemmStridedBatchedEx: f32 x f32 -> f32, bf16 x bf16 -> bf16 or f32, fp32 compute).
// Our matrices are row-major and cuBLAS's column-major, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T:
// the operands swap places and keep their own flags.
// One handle per device, created on first use and never destroyed (cuBLAS may not outlive the CUDA runtime at
// exit), with its own workspace from the caching allocator re-attached whenever the stream changes; threads
// share it under a lock held from binding the stream to queuing the GEMM.
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <mutex>
#include <utility>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cublas_api.h"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's recommendation for Hopper

void check_cublas(cublasStatus_t status, const char* what) {
  RWKV_CHECK(status == CUBLAS_STATUS_SUCCESS, what, ": cuBLAS error ", cublas_api().status_name(status), ": ",
             cublas_api().status_string(status));
}

struct DeviceBlas {
  cublasHandle_t handle = nullptr;
  void* workspace = nullptr;
  cudaStream_t stream = nullptr;
  bool stream_set = false;
};

// The handle of the current device bound to the current stream, with the lock that keeps it bound: the caller
// queues its GEMM while holding it, so another thread cannot rebind the shared handle to its own stream in
// between (the GEMM would then run on that stream). Queuing is asynchronous, so the lock is held only briefly.
struct BoundHandle {
  std::unique_lock<std::mutex> lock;
  cublasHandle_t handle;
};

BoundHandle handle_for_current_stream() {
  static std::mutex mutex;
  static DeviceBlas* per_device = new DeviceBlas[64];
  const int device = cuda::current_device();
  const cudaStream_t current = stream();
  std::unique_lock lock(mutex);
  DeviceBlas& blas = per_device[device];
  if (blas.handle == nullptr) {
    check_cublas(cublas_api().create(&blas.handle), "cublasCreate");
    blas.workspace = allocator_for(Device::cuda(device)).allocate(kWorkspaceBytes);  // kept for the process
  }
  if (!blas.stream_set || blas.stream != current) {
    // cublasSetStream resets the workspace to cuBLAS's own pool, so attach ours again after it.
    check_cublas(cublas_api().set_stream(blas.handle, current), "cublasSetStream");
    check_cublas(cublas_api().set_workspace(blas.handle, blas.workspace, kWorkspaceBytes), "cublasSetWorkspace");
    blas.stream = current;
    blas.stream_set = true;
  }
  return {std::move(lock), blas.handle};
}

int checked_int(int64_t value, const char* what) {
  RWKV_CHECK(value >= 0 && value <= INT32_MAX, "cuda gemm: ", what, " = ", value, " exceeds cuBLAS's 32-bit range");
  return static_cast<int>(value);
}

template <typename T>
__global__ void scale_kernel(T* c, int64_t rows, int64_t cols, int64_t ldc, int64_t stride_c, int64_t batch,
                             float beta) {
  RWKV_GRID_STRIDE(i, batch * rows * cols) {
    const int64_t g = i / (rows * cols), r = (i / cols) % rows, col = i % cols;
    T& value = c[g * stride_c + r * ldc + col];
    value = beta == 0.0f ? T(0.0f) : T(static_cast<float>(value) * beta);  // beta = 0 ignores NaN in C
  }
}

}  // namespace

void gemm(FloatIo ab_io, FloatIo c_io, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, float beta,
          void* c, int64_t ldc, int64_t stride_c, int64_t batch, bool allow_tf32) {
  RWKV_CHECK(ab_io == c_io || (ab_io == FloatIo::bf16 && c_io == FloatIo::f32),
             "cuda gemm: f32 operands need an f32 output (bf16 operands take a bf16 or f32 output)");
  if (m == 0 || n == 0 || batch == 0) return;
  const cudaDataType ab_type = ab_io == FloatIo::f32 ? CUDA_R_32F : CUDA_R_16BF;
  const cudaDataType c_type = c_io == FloatIo::f32 ? CUDA_R_32F : CUDA_R_16BF;
  if (k == 0) {  // no products: C = beta * C, written here rather than trusting every cuBLAS path with k = 0
    if (c_io == FloatIo::f32) {
      scale_kernel<<<blocks_for(batch * m * n, 256), 256, 0, stream()>>>(static_cast<float*>(c), m, n, ldc, stride_c,
                                                                         batch, beta);
    } else {
      scale_kernel<<<blocks_for(batch * m * n, 256), 256, 0, stream()>>>(static_cast<__nv_bfloat16*>(c), m, n, ldc,
                                                                         stride_c, batch, beta);
    }
    check_launch("cuda gemm (k = 0)");
    return;
  }
  // tf32 only rounds fp32 operands; bf16 operands always use the plain fp32-accumulating path.
  const cublasComputeType_t compute =
      ab_io == FloatIo::f32 && allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const BoundHandle blas = handle_for_current_stream();
  check_cublas(cublas_api().gemm_strided_batched_ex(
                   blas.handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                   trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                   checked_int(n, "n"), checked_int(m, "m"), checked_int(k, "k"), &alpha, b, ab_type,
                   checked_int(ldb, "ldb"), stride_b, a, ab_type, checked_int(lda, "lda"), stride_a, &beta, c, c_type,
                   checked_int(ldc, "ldc"), stride_c, checked_int(batch, "batch"), compute, CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
}

}  // namespace rwkv::cuda_kernels
