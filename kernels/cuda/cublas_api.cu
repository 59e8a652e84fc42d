#include "kernels/cuda/cublas_api.h"

#include <type_traits>

#include "core/shared_library.h"

namespace rwkv::cuda_kernels {

const CublasApi& cublas_api() {
  static const CublasApi api = [] {
    // Only the soname of the CUDA major this binary was built for: an unversioned libcublas.so on the system
    // path could be another major, whose symbols would all resolve.
    const SharedLibrary library = SharedLibrary::open({"libcublas.so." RWKV_CUBLAS_SOVERSION}, RWKV_CUDA_LIBRARY_DIR,
                                                      "matrix multiplication on the GPU (cuBLAS)");
    CublasApi resolved{};
    // The pointer types are the declared functions' (the GEMM's overload with a cublasComputeType_t).
    static_assert(std::is_same_v<decltype(resolved.create), decltype(&cublasCreate_v2)>);
    static_assert(std::is_same_v<decltype(resolved.set_stream), decltype(&cublasSetStream_v2)>);
    static_assert(std::is_same_v<decltype(resolved.set_workspace), decltype(&cublasSetWorkspace_v2)>);
    static_assert(std::is_same_v<decltype(resolved.gemm_strided_batched_ex),
                                 decltype(static_cast<decltype(resolved.gemm_strided_batched_ex)>(
                                     &cublasGemmStridedBatchedEx))>);
    static_assert(std::is_same_v<decltype(resolved.status_name), decltype(&cublasGetStatusName)>);
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
