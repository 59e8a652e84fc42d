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

void unary(FloatIo, Unary, const void*, void*, int64_t) { no_cuda("unary"); }
void unary_backward(FloatIo, Unary, const void*, const void*, const void*, void*, int64_t) {
  no_cuda("unary_backward");
}
void binary(FloatIo, Binary, const void*, const void*, int64_t, void*, int64_t) { no_cuda("binary"); }
void binary_left_broadcast(FloatIo, Binary, const void*, int64_t, const void*, void*, int64_t) {
  no_cuda("binary_left_broadcast");
}
void affine(FloatIo, const void*, float, float, void*, int64_t) { no_cuda("affine"); }
void accumulate(FloatIo, FloatIo, const void*, void*, int64_t) { no_cuda("accumulate"); }

void sum_middle(FloatIo, const void*, int64_t, int64_t, int64_t, void*) { no_cuda("sum"); }

void layernorm_forward(const float*, const float*, const float*, int64_t, int64_t, float, float*, float*, float*) {
  no_cuda("layernorm");
}
void layernorm_backward(const float*, const float*, const float*, const float*, const float*, int64_t, int64_t,
                        float*, float*, float*) {
  no_cuda("layernorm_backward");
}

void embedding_forward(const float*, int64_t, const void*, IdType, int64_t, float*) { no_cuda("embedding"); }
void embedding_backward(const float*, const void*, IdType, int64_t, int64_t, int64_t, float*) {
  no_cuda("embedding_backward");
}
int64_t first_id_out_of_range(const void*, IdType, int64_t, int64_t) { no_cuda("id range check"); }

void token_shift(const float*, const float*, int64_t, int64_t, int64_t, float*) { no_cuda("token_shift"); }
void token_shift_backward(const float*, int64_t, int64_t, int64_t, float*) { no_cuda("token_shift_backward"); }

void cross_entropy_forward(const float*, const void*, IdType, int64_t, int64_t, float*, float*) {
  no_cuda("cross_entropy");
}
void cross_entropy_backward(const float*, const void*, IdType, const float*, int64_t, int64_t, float, float*) {
  no_cuda("cross_entropy_backward");
}
void l2wrap_backward(const float*, int64_t, int64_t, float, float*) { no_cuda("l2wrap_backward"); }

void adam_step(float*, const float*, float*, float*, int64_t, float, float, float, float, float, float, float) {
  no_cuda("adam_step");
}
double sum_of_squares(const float*, int64_t) { no_cuda("sum_of_squares"); }
void multi_tensor_adam_step(const AdamTensorArgs*, int64_t, float, float, float, float, float, bool, float) {
  no_cuda("adam_step");
}
double multi_tensor_sum_of_squares(const float* const*, const int64_t*, int64_t) { no_cuda("sum_of_squares"); }

void gemm(FloatIo, FloatIo, bool, bool, int64_t, int64_t, int64_t, float, const void*, int64_t, int64_t, const void*,
          int64_t, int64_t, float, void*, int64_t, int64_t, int64_t, bool) {
  no_cuda("matmul");
}

WkvVersion resolve_wkv_version(WkvVersion requested) {
  return requested == WkvVersion::automatic ? WkvVersion::v1_serial : requested;
}
const char* wkv_version_name(WkvVersion version) {
  return resolve_wkv_version(version) == WkvVersion::v2_chunked ? "v2" : "v1";
}
void wkv_forward(const WkvForwardArgs&, WkvVersion) { no_cuda("wkv"); }
void wkv_backward(const WkvBackwardArgs&, WkvVersion) { no_cuda("wkv_backward"); }

}  // namespace rwkv::cuda_kernels
