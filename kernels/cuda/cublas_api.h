// The cuBLAS functions the GEMMs use, resolved from libcublas when the first GEMM runs on a GPU (see
// core/shared_library.h for why it is not linked).
#pragma once

#include <cublas_v2.h>

namespace rwkv::cuda_kernels {

struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t*);
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t);
  // The overload with a cublasComputeType_t (the header adds an inline one taking a cudaDataType).
  cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                            const void*, const void*, cudaDataType, int, long long int, const void*,
                                            cudaDataType, int, long long int, const void*, void*, cudaDataType, int,
                                            long long int, int, cublasComputeType_t, cublasGemmAlgo_t);
  const char* (*status_name)(cublasStatus_t);
  const char* (*status_string)(cublasStatus_t);
};

// Loads libcublas (once, thread-safe) and resolves every function above; throws rwkv::Error when it cannot.
const CublasApi& cublas_api();

}  // namespace rwkv::cuda_kernels
