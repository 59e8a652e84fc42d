#include "kernels/cuda/cublas_api.h"

#include "core/shared_library.h"

namespace rwkv::cuda_kernels {

const CublasApi& cublas_api() {
  static const CublasApi api = [] {
    const SharedLibrary library = SharedLibrary::open({"libcublas.so." RWKV_CUBLAS_SOVERSION, "libcublas.so"},
                                                      RWKV_CUDA_LIBRARY_DIR, "matrix multiplication on the GPU (cuBLAS)");
    CublasApi resolved{};
    // The names behind cublas_v2.h's macros (cublasCreate -> cublasCreate_v2, ...).
    resolved.create = library.function<decltype(resolved.create)>("cublasCreate_v2");
    resolved.set_stream = library.function<decltype(resolved.set_stream)>("cublasSetStream_v2");
    resolved.set_workspace = library.function<decltype(resolved.set_workspace)>("cublasSetWorkspace_v2");
    resolved.gemm_strided_batched_ex =
        library.function<decltype(resolved.gemm_strided_batched_ex)>("cublasGemmStridedBatchedEx");
    resolved.status_name = library.function<decltype(resolved.status_name)>("cublasGetStatusName");
    resolved.status_string = library.function<decltype(resolved.status_string)>("cublasGetStatusString");
    return resolved;
  }();
  return api;
}

}  // namespace rwkv::cuda_kernels
