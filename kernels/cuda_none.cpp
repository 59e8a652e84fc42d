// The CUDA kernel entry points in a build without the CUDA backend. They are unreachable in practice (no CUDA
// tensor can be created without CUDA), but keep the dispatch code identical in both builds.
#include "core/error.h"
#include "kernels/cuda/kernels.h"

namespace rwkv::cuda_kernels {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  RWKV_FAIL(op, ": this build has no CUDA backend (rebuild with the CUDA Toolkit installed)");
}
}  // namespace

void unary(Unary, const float*, float*, int64_t) { no_cuda("unary"); }
void unary_backward(Unary, const float*, const float*, const float*, float*, int64_t) {
  no_cuda("unary_backward");
}
void binary(Binary, const float*, const float*, int64_t, float*, int64_t) { no_cuda("binary"); }
void binary_left_broadcast(Binary, const float*, int64_t, const float*, float*, int64_t) {
  no_cuda("binary_left_broadcast");
}
void affine(const float*, float, float, float*, int64_t) { no_cuda("affine"); }
void accumulate(const float*, float*, int64_t) { no_cuda("accumulate"); }

}  // namespace rwkv::cuda_kernels
